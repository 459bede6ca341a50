"""The Docker token service: signed RS256 JWTs carrying what
``accounts.access.grant_scopes`` permits of the scopes requested.

The signing key lives in the database (created at first start) so every replica
signs and verifies alike; each process loads it once.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import IntegrityError

from accounts.access import Actor, Scope
from accounts.errors import Invalid
from accounts.models import SigningKey

SERVICE = "harbor-registry"
ISSUER = "harbor-token-issuer"
REFRESH_AUDIENCE = "berth-refresh"


class InvalidToken(Exception):
    pass


class _Keys:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kid = ""
        self.private: Any = None
        self.public: Any = None

    def load(self) -> _Keys:
        if self.private is None:
            with self._lock:
                if self.private is None:
                    row = SigningKey.objects.order_by("created_at").first() or ensure_signing_key()
                    key = serialization.load_pem_private_key(row.private_pem.encode(), None)
                    self.public = key.public_key()
                    self.kid = row.kid
                    self.private = key
        return self

    def reset(self) -> None:
        with self._lock:
            self.private = self.public = None
            self.kid = ""


_keys = _Keys()


def ensure_signing_key() -> SigningKey:
    existing = SigningKey.objects.order_by("created_at").first()
    if existing is not None:
        return existing
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = hashlib.sha256(der).hexdigest()[:32]
    try:
        return SigningKey.objects.create(kid=kid, private_pem=pem)
    except IntegrityError:
        return SigningKey.objects.order_by("created_at").first()  # type: ignore[return-value]


# Real clients ask for a handful of scopes per token (docker: the repository and
# the mount source); a repository scope is at most 255 characters of name plus
# its type and actions. One request with 20,000 scopes took 13.7 s (a lookup
# per repository) and returned a 2.4 MB token.
MAX_SCOPES = 100
MAX_SCOPE_LENGTH = 512


def parse_scopes(values: list[str]) -> list[Scope]:
    """``repository:<name>:<a,b>`` and ``registry:catalog:*``; unknown forms
    are ignored. More than ``MAX_SCOPES`` scopes, or one longer than
    ``MAX_SCOPE_LENGTH``, is refused (``Invalid``) before any lookup."""
    items = [item for value in values for item in value.split()]
    if len(items) > MAX_SCOPES:
        raise Invalid(f"at most {MAX_SCOPES} scopes per token request, got {len(items)}")
    if any(len(item) > MAX_SCOPE_LENGTH for item in items):
        raise Invalid(f"a scope is at most {MAX_SCOPE_LENGTH} characters")
    scopes = []
    for item in items:
        kind, sep, rest = item.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and name):
            continue
        kind = kind.split("(", 1)[0]  # repository(plugin) → repository
        scopes.append(Scope(kind, name, tuple(a for a in actions.split(",") if a)))
    return scopes


def _now() -> int:
    return int(time.time())


def issue(actor: Actor, access_list: list[dict[str, Any]], *, audience: str = SERVICE) -> dict:
    keys = _keys.load()
    ttl = settings.BERTH_TOKEN_TTL
    now = _now()
    claims = {
        "iss": ISSUER,
        "sub": actor.name if actor.authenticated else "",
        "aud": audience,
        "exp": now + ttl,
        "nbf": now - 5,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": access_list,
        "kind": actor.kind,
    }
    if actor.authenticated and actor.id is not None:
        # The principal's id: /v2 checks it is still enabled (identity.identify).
        claims["pid"] = actor.id
    if actor.token_id is not None:
        # Issued from a personal access token: /v2 checks it is still live.
        claims["tid"] = actor.token_id
    token = jwt.encode(claims, keys.private, algorithm="RS256", headers={"kid": keys.kid})
    return {
        "token": token,
        "access_token": token,
        "expires_in": ttl,
        "issued_at": datetime.datetime.fromtimestamp(now, tz=datetime.UTC).isoformat(),
    }


def issue_refresh(actor: Actor, stamp: str) -> str:
    """A refresh token bound to the principal's id and ``stamp``
    (``accounts.services.auth.principal_stamp``): it dies when the secret or
    password changes, and with the principal (disabled, deleted)."""
    keys = _keys.load()
    now = _now()
    claims = {
        "iss": ISSUER,
        "sub": actor.name,
        "aud": REFRESH_AUDIENCE,
        "exp": now + settings.BERTH_REFRESH_TOKEN_TTL,
        "nbf": now - 5,
        "iat": now,
        "kind": actor.kind,
        "pid": actor.id,
        "stp": stamp,
    }
    if actor.token_id is not None:
        claims["tid"] = actor.token_id  # dies with the personal access token
    return jwt.encode(claims, keys.private, algorithm="RS256", headers={"kid": keys.kid})


class _VerifiedCache:
    """Tokens already verified in this process (signature checks cost ~0.1 ms).

    Read without a lock (one ``dict.get``, atomic under the GIL): every /v2
    request with a token reads it, and a lock here is one that many request
    threads queue on. Writes lock among themselves; the oldest entry goes
    first once ``limit`` is reached."""

    def __init__(self, limit: int = 4096) -> None:
        self._items: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, token: str) -> dict | None:
        claims = self._items.get(token)
        if claims is not None and claims["exp"] + 60 < _now():
            return None
        return claims

    def put(self, token: str, claims: dict) -> None:
        with self._lock:
            self._items[token] = claims
            while len(self._items) > self._limit:
                del self._items[next(iter(self._items))]


_verified = _VerifiedCache()


def reset() -> None:
    """Forget this process's signing keys (loaded again from the database on the
    next use) and the tokens it verified: what a new process starts with."""
    _keys.reset()
    with _verified._lock:
        _verified._items.clear()


def verify(token: str, *, audience: str = SERVICE) -> dict:
    """Claims of a token this service signed; InvalidToken otherwise. Only RS256
    with Berth's own key: `alg: none`, HS256 with the public key, embedded `jwk`
    headers and foreign keys are all refused."""
    cached = _verified.get(token) if audience == SERVICE else None
    if cached is not None:
        return cached
    keys = _keys.load()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != keys.kid:
            raise InvalidToken("unknown signing key")
        claims = jwt.decode(
            token,
            keys.public,
            algorithms=["RS256"],
            audience=audience,
            issuer=ISSUER,
            leeway=60,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if audience == SERVICE:
        _verified.put(token, claims)
    return claims


def verified_claims(token: str) -> dict | None:
    """The claims of a token this process has already verified and that has not
    expired since; None otherwise (verify it with ``verify``)."""
    return _verified.get(token)


def token_allows(claims: dict, type_: str, name: str, action: str) -> bool:
    return any(
        entry.get("type") == type_
        and entry.get("name") == name
        and (action in entry.get("actions", []) or "*" in entry.get("actions", []))
        for entry in claims.get("access", [])
    )
