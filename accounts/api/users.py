from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import render
from accounts.api.base import HarborView, created
from accounts.api.paging import apply_sort, paginate, parse_q
from accounts.api.params import Flag, Text, fields
from accounts.errors import Denied, Unauthenticated
from accounts.models import User
from accounts.services import pats
from accounts.services import users as svc

Q_FIELDS = {"username": "username", "email": "email"}
SORT_FIELDS = {"username": "username", "creation_time": "date_joined"}


def _optional_text(**kwargs: Any) -> Text:
    return Text(required=False, allow_null=True, **kwargs)


class UserProfile(serializers.Serializer):
    """Harbor's UserProfile (``PUT /users/{id}``)."""

    email = _optional_text(max_length=255)
    realname = _optional_text()
    comment = _optional_text()


class UserCreation(UserProfile):
    """Harbor's UserCreationReq. Only these fields are read: ``sysadmin_flag``,
    ``admin``, ``role``… are not fields, so they raise nothing (case C22)."""

    username = _optional_text(max_length=255)
    password = _optional_text()


class PasswordReq(serializers.Serializer):
    old_password = _optional_text()
    new_password = _optional_text()


class UserList(HarborView):
    def get(self, request: Request) -> Response:
        if not self.actor(request).sysadmin:
            raise Denied("only system administrators may list users")
        rows = apply_sort(
            User.objects.filter(**parse_q(request, Q_FIELDS)), request, SORT_FIELDS, "username"
        )
        return paginate(request, rows, lambda page: [render.user(u) for u in page])

    def post(self, request: Request) -> Response:
        data = fields(request, UserCreation)
        user = svc.user_create(
            actor=self.actor(request), **{"username": "", "password": "", **data}
        )
        return created(f"/api/v2.0/users/{user.pk}")


class UserCurrent(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if actor.kind != "user":
            raise Unauthenticated()
        body = render.user(svc.user_get(actor=actor, user_id=actor.id or 0))
        cli = pats.cli_secret_of(actor=actor)
        if cli is not None:
            # Harbor shows its owner the CLI secret here (its profile page).
            body["oidc_user_meta"] = render.cli_secret(*cli)
        return Response(body)


class UserSearch(HarborView):
    def get(self, request: Request) -> Response:
        if not self.actor(request).authenticated:
            raise Unauthenticated()
        name = request.query_params.get("username", "")
        rows = User.objects.filter(username__icontains=name).order_by("username")
        return paginate(
            request, rows, lambda page: [{"user_id": u.pk, "username": u.username} for u in page]
        )


class UserDetail(HarborView):
    def get(self, request: Request, uid: int) -> Response:
        return Response(render.user(svc.user_get(actor=self.actor(request), user_id=uid)))

    def put(self, request: Request, uid: int) -> Response:
        """Harbor's updateUserProfile: the user itself or a sysadmin. A field
        left out (or null) keeps its value."""
        svc.user_update_profile(
            actor=self.actor(request), user_id=uid, **fields(request, UserProfile)
        )
        return Response(status=200)

    def delete(self, request: Request, uid: int) -> Response:
        svc.user_delete(actor=self.actor(request), user_id=uid)
        return Response(status=200)


class UserPassword(HarborView):
    def put(self, request: Request, uid: int) -> Response:
        data = fields(request, PasswordReq)
        svc.user_set_password(
            actor=self.actor(request),
            user_id=uid,
            old=data.get("old_password", ""),
            new=data.get("new_password", ""),
        )
        return Response(status=200)


class SysadminFlag(serializers.Serializer):
    sysadmin_flag = Flag(required=False, default=False)


class UserSysadmin(HarborView):
    def put(self, request: Request, uid: int) -> Response:
        flag = fields(request, SysadminFlag)["sysadmin_flag"]
        svc.user_set_sysadmin(actor=self.actor(request), user_id=uid, flag=flag)
        return Response(status=200)


class CliSecretReq(serializers.Serializer):
    """Harbor's OIDCCliSecretReq."""

    secret = _optional_text()


class UserCliSecret(HarborView):
    def put(self, request: Request, uid: int) -> Response:
        """Harbor's setCliSecret: the user itself or a system administrator
        (docs/tokens.md)."""
        pats.cli_secret_set(
            actor=self.actor(request),
            user_id=uid,
            secret=fields(request, CliSecretReq).get("secret", ""),
        )
        return Response(status=200)
