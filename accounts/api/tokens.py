"""Berth's own API for personal access tokens (not Harbor's: docs/tokens.md),
under ``/api/v2.0/berth/``: list, create (the secret in this answer only) and
revoke one's own tokens; system administrators list and revoke anyone's."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import render
from accounts.api.base import HarborView, created
from accounts.api.paging import paginate
from accounts.api.params import Closed, Integer, Text, fields, query
from accounts.api.robots import Permission
from accounts.services import pats as svc


class TokenCreate(Closed):
    """``duration``: days until it expires, -1 for never (within
    ``BERTH_ACCESS_TOKEN_MAX_DAYS``)."""

    name = Text()
    permissions = serializers.ListField(child=Permission())
    duration = Integer(required=False, allow_null=True, minimum=-1, maximum=365_000)


class TokenFilter(serializers.Serializer):
    """``user_id``: another user's tokens (system administrators)."""

    user_id = Integer(required=False, minimum=1)


class TokenList(HarborView):
    def get(self, request: Request) -> Response:
        rows = svc.tokens_visible(
            actor=self.actor(request), user_id=query(request, TokenFilter).get("user_id")
        )
        return paginate(
            request,
            rows.order_by("-created_at", "-id"),
            lambda page: [render.token(t) for t in page],
        )

    def post(self, request: Request) -> Response:
        data = fields(request, TokenCreate)
        duration = data.get("duration")
        token, secret = svc.token_create(
            actor=self.actor(request),
            name=data["name"],
            permissions=data["permissions"],
            duration=-1 if duration is None else duration,
        )
        return created(
            f"/api/v2.0/berth/tokens/{token.pk}", {**render.token(token), "secret": secret}
        )


class TokenDetail(HarborView):
    def get(self, request: Request, tid: int) -> Response:
        return Response(render.token(svc.token_get(actor=self.actor(request), token_id=tid)))

    def delete(self, request: Request, tid: int) -> Response:
        """Revoke (the row stays, listed as revoked)."""
        svc.token_revoke(actor=self.actor(request), token_id=tid)
        return Response(status=200)
