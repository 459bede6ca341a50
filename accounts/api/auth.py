"""DRF authentication: Basic (users and robots, through the same throttled,
cached check as everywhere) and Harbor's browser session (`sid` cookie, CSRF token
in `X-Harbor-CSRF-Token`)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from accounts.access import ANONYMOUS, Actor
from accounts.services.auth import Throttled, actor_for_user, authenticate
from kit.net import client_ip


class ActorUser:
    """What ``request.user`` is for an API call authenticated by Basic."""

    is_anonymous = False
    is_authenticated = True

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.pk = actor.id
        self.username = actor.name


class BasicAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ActorUser, None] | None:
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("malformed credentials") from None
        try:
            actor = authenticate(
                username=username, password=password, client=client_ip(request.META)
            )
        except Throttled as exc:
            raise exceptions.Throttled(wait=exc.retry_after) from None
        if actor is None:
            raise exceptions.AuthenticationFailed("invalid username or password")
        return ActorUser(actor), None

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="harbor"'


class HarborSessionAuthentication(SessionAuthentication):
    """Django's session; CSRF enforced on unsafe methods (header name configured
    in settings as Harbor's X-Harbor-CSRF-Token)."""


def actor_of(request: Any) -> Actor:
    user = getattr(request, "user", None)
    if isinstance(user, ActorUser):
        return user.actor
    if user is not None and user.is_authenticated and user.is_active:
        return actor_for_user(user)
    return ANONYMOUS
