"""The identity seam: the one place a request becomes an ``Actor``.

Every entry point asks here who is calling — ``/v2`` (Bearer or Basic), the token
service (Basic), the API (Basic; the session through DRF), browser and admin
login (form fields) — and turns the answer into its own protocol's reply
(a registry challenge, a JSON 401, a form error). What the caller may then do
is ``accounts.access``'s to decide.

- Basic credentials are parsed by ``basic_credentials`` alone.
- Passwords are checked by ``accounts.services.auth.check_credentials``: the
  throttle, then robots as their own branch (``robot$…``: secrets, not
  passwords), users' personal access tokens (``berth_pat_…``) and CLI
  secrets, users through Django's ``AUTHENTICATION_BACKENDS`` (the local
  backend caches verified credentials). An LDAP, OIDC or CAS source is one more
  backend in that setting; nothing here, in ``/v2``, the token service or the
  API changes.
- A bearer token is verified by the token service's key; its claims name the
  actor without a query (``Identity.current()`` reloads roles when needed),
  and whether that principal is still enabled is answered from a per-process
  cache (``principal_active``), so a disabled or deleted one's tokens stop
  working within ``BERTH_PRINCIPAL_RECHECK_SECONDS``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from accounts.access import ANONYMOUS, Actor
from accounts.services.auth import (
    Proof,
    Throttled,
    actor_for_user,
    actor_from_claims,
    check_credentials,
    principal_active,
    principal_known_active,
)
from accounts.services.tokens import InvalidToken, verified_claims, verify
from kit.net import client_ip

__all__ = [
    "BASIC",
    "BEARER",
    "BadCredentials",
    "Identity",
    "Proof",
    "Throttled",
    "actor_of_user",
    "basic_credentials",
    "id_token_bearer",
    "identify",
    "known_bearer",
    "login",
]

BASIC = "basic"
BEARER = "bearer"


class BadCredentials(Exception):
    """Credentials were presented and prove nobody (malformed, wrong, expired).

    The message is the same for an unknown name and a wrong password."""

    def __init__(self, message: str, *, scheme: str, username: str = "") -> None:
        super().__init__(message)
        self.scheme = scheme
        self.username = username


@dataclass(frozen=True, slots=True)
class Identity:
    actor: Actor
    client: str
    scheme: str = ""  # "" (no credentials) | "basic" | "bearer"
    claims: dict[str, Any] | None = None  # a bearer token's
    username: str = ""  # the name presented with Basic

    def current(self) -> Actor:
        """The actor with its current roles and grants (a token carries only a
        name; one query to reload it)."""
        if self.claims is None or not self.actor.authenticated:
            return self.actor
        return actor_from_claims(
            self.actor.kind, self.actor.name, self.actor.id, self.actor.token_id
        )


def _bearer_actor(claims: Mapping[str, Any]) -> Actor:
    """Who a token's claims name (anonymous without a subject)."""
    if not claims.get("sub"):
        return ANONYMOUS
    return Actor(
        kind=claims.get("kind", "user"),
        id=claims.get("pid"),
        name=claims["sub"],
        token_id=claims.get("tid"),
    )


def known_bearer(meta: Mapping[str, Any]) -> Identity | None:
    """``identify`` for a Bearer token, from this process's memory only: who
    the token proves when this process has verified it before and knows the
    principal it names to be active; None for anything else (another scheme,
    a token not yet verified here, a principal to look up or no longer active),
    which ``identify`` then answers in full. ``meta``: ``request.META`` or the
    WSGI environ (the manifest fast path, registry/oci/fast.py)."""
    scheme, _, value = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != BEARER:
        return None
    claims = verified_claims(value.strip())
    if claims is None:
        return None
    actor = _bearer_actor(claims)
    if actor.authenticated and not principal_known_active(
        actor.kind, actor.id, actor.name, actor.token_id
    ):
        return None
    return Identity(actor, client_ip(meta), BEARER, claims)


def basic_credentials(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """(user name, password) of an ``Authorization: Basic`` header; None without
    one. Raises BadCredentials when it cannot be decoded."""
    scheme, _, value = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != BASIC:
        return None
    try:
        username, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadCredentials("malformed credentials", scheme=BASIC) from None
    return username, password


def identify(request: HttpRequest, *, schemes: Collection[str] = (BASIC, BEARER)) -> Identity:
    """Who the request's ``Authorization`` header proves (among ``schemes``):
    anonymous without one. Raises BadCredentials or Throttled."""
    client = client_ip(request.META)
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme = header.partition(" ")[0].lower()
    if scheme == BEARER and BEARER in schemes:
        try:
            claims = verify(header.partition(" ")[2].strip())
        except InvalidToken:
            raise BadCredentials("invalid or expired token", scheme=BEARER) from None
        actor = _bearer_actor(claims)
        if actor.authenticated and not principal_active(
            actor.kind, actor.id, actor.name, actor.token_id
        ):
            # Disabled or deleted since the token was issued (or the personal
            # access token it was issued from was revoked or expired).
            raise BadCredentials("invalid or expired token", scheme=BEARER)
        return Identity(actor, client, BEARER, claims)
    if scheme == BASIC and BASIC in schemes:
        credentials = basic_credentials(request.META)
        assert credentials is not None
        username, password = credentials
        proof = check_credentials(
            username=username, password=password, client=client, request=request
        )
        if proof is None:
            raise BadCredentials("invalid username or password", scheme=BASIC, username=username)
        return Identity(proof.actor, client, BASIC, username=username)
    return Identity(ANONYMOUS, client)


def id_token_bearer(request: HttpRequest) -> Identity | None:
    """Harbor's ``Authorization: Bearer <ID token>`` of an enabled OpenID
    Provider (the API accepts it): who it proves, or None when the header holds
    no such token (the token service's own are for /v2). Raises BadCredentials
    when it is one and is not valid."""
    from django.core.exceptions import SuspiciousOperation

    from accounts import oidc

    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != BEARER or not value.strip():
        return None
    try:
        user = oidc.user_for_id_token(value.strip())
    except SuspiciousOperation:
        raise BadCredentials("invalid or expired ID token", scheme=BEARER) from None
    if user is None:
        return None
    return Identity(actor_for_user(user), client_ip(request.META), BEARER)


def login(request: HttpRequest, *, username: str, password: str) -> Proof | None:
    """Credentials from a form (browser and admin login, the OAuth2 password
    grant): what they prove, or None. Raises Throttled."""
    return check_credentials(
        username=username, password=password, client=client_ip(request.META), request=request
    )


def actor_of_user(user: Any) -> Actor:
    """The actor of a Django session's user (anonymous unless active)."""
    if user is not None and user.is_authenticated and user.is_active:
        return actor_for_user(user)
    return ANONYMOUS
