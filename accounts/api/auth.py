"""DRF authentication: thin adapters on the identity seam (``accounts.identity``):
Basic (users and robots), an OpenID Provider's ID token as a bearer token, and
Harbor's browser session (`sid` cookie, CSRF token
in `X-Harbor-CSRF-Token`)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from accounts import identity
from accounts.access import Actor


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
        try:
            who = identity.identify(request._request, schemes=(identity.BASIC,))
        except identity.BadCredentials as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        except identity.Throttled as exc:
            raise exceptions.Throttled(wait=exc.retry_after) from None
        if not who.scheme:
            return None
        return ActorUser(who.actor), None

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="harbor"'


class IdTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <ID token>`` of an enabled OpenID Provider, as
    Harbor's API accepts it (accounts.oidc.user_for_id_token)."""

    def authenticate(self, request: Request) -> tuple[ActorUser, None] | None:
        try:
            who = identity.id_token_bearer(request._request)
        except identity.BadCredentials as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return None if who is None else (ActorUser(who.actor), None)

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="harbor"'


class HarborSessionAuthentication(SessionAuthentication):
    """Django's session; CSRF enforced on unsafe methods (header name configured
    in settings as Harbor's X-Harbor-CSRF-Token)."""


def actor_of(request: Any) -> Actor:
    user = getattr(request, "user", None)
    if isinstance(user, ActorUser):
        return user.actor
    return identity.actor_of_user(user)
