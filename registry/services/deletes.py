"""BERTH_DELETES_ENABLED=false: nothing is deleted through /v2 or the API —
manifests, tags, blobs and repositories alike (case C29)."""

from __future__ import annotations

from django.conf import settings

from registry.errors import Code, RegistryError


def require_deletes_enabled() -> None:
    if not settings.BERTH_DELETES_ENABLED:
        raise RegistryError(Code.UNSUPPORTED, "deletes are disabled on this registry")
