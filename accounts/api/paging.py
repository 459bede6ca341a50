"""Harbor's pagination (``page``, ``page_size``, ``X-Total-Count``, ``Link``) and
its ``q=`` query syntax, restricted to the fields each endpoint documents."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus, urlencode

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.params import Paging, query
from accounts.errors import Invalid
from kit import params

MAX_PAGE_SIZE = 100


def paginate(
    request: Request,
    rows: QuerySet[Any],
    render: Callable[[Iterable[Any]], list[Any]],
) -> Response:
    """``page`` (any 64-bit number; 0, empty or absent: the first) of
    ``page_size`` rows (0: as many as allowed, empty or absent: 10; at most
    MAX_PAGE_SIZE). Harbor's
    clients send page=0&page_size=0 meaning "from the start, as many as allowed"."""
    asked = query(request, Paging)
    page = asked.get("page") or 1
    size = asked.get("page_size")
    size = 10 if size is None else min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    total = rows.count()
    # A page past the end is empty without asking the database for an offset
    # it may not be able to hold (SQLite's and PostgreSQL's are 64-bit).
    offset = (page - 1) * size
    items = render(rows[offset : offset + size]) if offset < total else []
    response = Response(items)
    response["X-Total-Count"] = str(total)
    links = []
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "page_size")}

    def link(to: int, rel: str) -> str:
        query = urlencode({**params, "page": to, "page_size": size})
        return f'<{request.path}?{query}>; rel="{rel}"'

    if page > 1:
        links.append(link(page - 1, "prev"))
    if page * size < total:
        links.append(link(page + 1, "next"))
    if links:
        response["Link"] = ", ".join(links)
    return response


_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def query_q(request: Request) -> str:
    """The ``q`` parameter, unescaped once more as Harbor's ``lib/q`` does:
    harbor-cli escapes the value itself before its client escapes it again
    (``q=Level%253Dproject``). A value that does not unescape (a stray ``%``)
    is kept as it came, as in Harbor."""
    raw = request.query_params.get("q", "")
    return raw if _MALFORMED_ESCAPE.search(raw) else unquote_plus(raw)


def query_bool(request: Request, name: str) -> bool | None:
    return params.optional_boolean(request.query_params.get(name), name=name)


def parse_q(request: Request, fields: dict[str, str]) -> dict[str, Any]:
    """``q=k1=v1,k2=~v2`` → ORM lookups, only for ``fields`` (query key → model
    field); anything else (``password``, ``salt``…) is refused."""
    return q_lookups(query_q(request), fields)


def q_lookups(raw: str, fields: dict[str, str]) -> dict[str, Any]:
    """parse_q for a ``q`` already read (a caller that takes some keys itself)."""
    lookups: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in fields:
            raise Invalid(f"cannot filter on {key!r}")
        if value.startswith("~"):
            lookups[f"{fields[key]}__icontains"] = value[1:]
        else:
            lookups[fields[key]] = value
    return lookups


def apply_sort(
    rows: QuerySet[Any], request: Request, fields: dict[str, str], default: str = "pk"
) -> QuerySet[Any]:
    """``sort=a,-b`` over documented fields; ``default`` otherwise (explicit: Django
    ignores Meta.ordering in aggregated queries, and pages need a stable order)."""
    raw = request.query_params.get("sort", "")
    order = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        descending = part.startswith("-")
        key = part.lstrip("-")
        if key not in fields:
            raise Invalid(f"cannot sort on {key!r}")
        order.append(("-" if descending else "") + fields[key])
    return rows.order_by(*order, "pk") if order else rows.order_by(default, "pk")
