"""Harbor's content API (``/api/v2.0``): repositories, artifacts, tags, immutable
tag rules (``content``), statistics, search and quotas (``overview``); routes in
``urls``, composed with the other apps' by ``portal/urls.py``."""
