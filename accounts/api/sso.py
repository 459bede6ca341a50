"""Harbor's ``POST /system/oidc/ping``: is an OpenID Provider's discovery
document reachable (through the guarded client)? The body names the issuer
(``url``) and ``verify_cert``; the primary OIDC provider's other settings stand
in. 200 when it answers, Harbor's 400 with why when not. Sysadmins only."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import oidc
from accounts.api.base import HarborView
from accounts.api.params import Closed, Flag, Text, fields
from accounts.services import providers


class OidcPingBody(Closed):
    url = Text(required=True)
    verify_cert = Flag(required=False, allow_null=True)


class OidcPing(HarborView):
    def post(self, request: Request) -> Response:
        actor = self.actor(request)
        data = fields(request, OidcPingBody)
        config: dict[str, Any] = {"issuer": data["url"]}
        if data.get("verify_cert") is not None:
            config["verify_cert"] = data["verify_cert"]
        primary = oidc.primary()
        if primary is None:
            config.setdefault("client_id", "ping")  # only discovery is asked
        providers.provider_ping(
            actor=actor,
            kind="oidc",
            config=config,
            provider_id=primary.pk if primary else None,
        )
        return Response(status=200)
