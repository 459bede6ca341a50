from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import HarborView
from accounts.errors import NotFound
from accounts.services import config, providers
from kit import health

VERSION = "v2.16.0-berth"
# A CA bundle is a few kilobytes; never more than this is read.
MAX_CERT_BYTES = 1 << 20
HARBOR_NAMES = {"storage": "registry", "broker": "jobservice", "cache": "redis"}


class Ping(HarborView):
    def get(self, request: Request) -> Response:
        return HttpResponse("Pong", content_type="text/plain")  # type: ignore[return-value]


class Health(HarborView):
    """Harbor's health: 200 always, the overall status and one entry per
    component under Harbor's names (core, database, registry = blob storage,
    jobservice = the job broker, redis = the shared cache when configured)."""

    def get(self, request: Request) -> Response:
        found = [health.Component("core", True), *health.components()]
        components = [{**c.as_json(), "name": HARBOR_NAMES.get(c.name, c.name)} for c in found]
        status = "healthy" if all(c.healthy for c in found) else "unhealthy"
        return Response({"status": status, "components": components})


class SystemInfo(HarborView):
    def get(self, request: Request) -> Response:
        mode = providers.auth_mode()
        primary_oidc = providers.enabled("oidc")[:1] if mode == "oidc_auth" else []
        info = {
            "auth_mode": mode,
            # Harbor's UI names its "log in via" button after it.
            "oidc_provider_name": primary_oidc[0].name if primary_oidc else "",
            "harbor_version": VERSION,
            **config.current(),
            "registry_url": settings.BERTH_EXTERNAL_URL or request.get_host(),
            "external_url": settings.BERTH_EXTERNAL_URL
            or f"{request.scheme}://{request.get_host()}",
            "has_ca_root": bool(settings.BERTH_ROOT_CA_FILE),
            "read_only": False,
            "with_chartmuseum": False,
            "notification_enable": False,
        }
        return Response(info)


class RootCert(HarborView):
    """Harbor's ``/systeminfo/getcert``: the CA certificate clients add to trust
    the registry's TLS (``BERTH_ROOT_CA_FILE``, read when asked), for anyone;
    404 when none is configured, as Harbor without its ``ca.crt``. Berth's
    token-signing key has no certificate to give: /v2 verifies its own tokens."""

    def get(self, request: Request) -> HttpResponse:
        path = settings.BERTH_ROOT_CA_FILE
        if not path:
            raise NotFound(message="no root certificate is configured")
        try:
            with open(path, "rb") as cert:
                data = cert.read(MAX_CERT_BYTES)
        except FileNotFoundError:
            raise NotFound(message="no root certificate is configured") from None
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = "attachment; filename=ca.crt"
        return response


class Unknown(HarborView):
    """Any other path under /api/v2.0: Harbor's JSON 404, not an HTML page."""

    def _missing(self, request: Request, rest: str = "") -> Response:
        raise NotFound(rest)

    get = post = put = patch = delete = head = _missing
