"""Checking credentials: users (through Django's ``AUTHENTICATION_BACKENDS``;
the local one checks a password once, then caches the proof), users' personal
access tokens and CLI secrets (docs/tokens.md; proofs cached alike) and robots
(secret), with guessing throttled per (name, client) — never a lockout an
attacker could aim at someone else. Requests reach this through the identity
seam, ``accounts/identity.py``.

Both use ``CACHES["default"]``: the shared Redis with ``BERTH_CACHE_URL``, so a
proof and a count of failures hold across replicas. While it is unreachable
each process falls back to its own memory (``CACHES["local"]``): throttling
continues per process (an attacker gets at most the allowance once per
process, never unlimited guesses), and verified passwords are cached per
process. A cached proof is only a shortcut: every use re-checks the user row
(active, same password hash), so a stale one never admits anybody.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import caches
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.access import ANONYMOUS, Actor, Limit, robot_grants
from accounts.models import ExternalIdentity, PersonalAccessToken, Robot, User
from accounts.services import usage
from accounts.services.secrets import check_secret
from kit.cache import CacheUnavailable, ThreadHandle

ROBOT_PREFIX = "robot$"
CREDENTIAL_TTL = 300
# A personal access token: the prefix (so scanners and people recognise one),
# then KEY_LENGTH characters that find its row, then the secret proper.
TOKEN_PREFIX = "berth_pat_"  # noqa: S105 - a prefix, not a secret
KEY_LENGTH = 12
_NO_SECRET = "sha256$0$" + "0" * 64  # compared against for unknown names: the same work


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


def _call(method: str, *args: Any) -> Any:
    """A cache call on the shared cache, or on this process's own while the
    shared one is unavailable."""
    try:
        return getattr(caches["default"], method)(*args)
    except CacheUnavailable:
        return getattr(caches["local"], method)(*args)


def _digest(*parts: str) -> str:
    raw = "\0".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), raw, hashlib.sha256).hexdigest()


def actor_for_user(user: User) -> Actor:
    return Actor(kind="user", id=user.pk, name=user.username, sysadmin=user.is_superuser)


def actor_for_robot(robot: Robot) -> Actor:
    return Actor(
        kind="robot",
        id=robot.pk,
        name=robot.name,
        grants=robot_grants(robot.permissions),
        robot_project_id=robot.project_id,
    )


@dataclass(frozen=True, slots=True)
class _Throttle:
    key: str

    def check(self) -> None:
        failures = _call("get", self.key, 0)
        if failures >= settings.BERTH_LOGIN_FAILURES_ALLOWED:
            raise Throttled(settings.BERTH_LOGIN_THROTTLE_SECONDS)

    def failed(self) -> None:
        ttl = settings.BERTH_LOGIN_THROTTLE_SECONDS
        if not _call("add", self.key, 1, ttl):
            try:
                _call("incr", self.key)
            except ValueError:
                _call("set", self.key, 1, ttl)

    def succeeded(self) -> None:
        _call("delete", self.key)


@dataclass(frozen=True, slots=True)
class Proof:
    """What a credential check proved: the actor, and for a user the Django user
    (with ``backend`` set by the backend that checked it, for ``login()``)."""

    actor: Actor
    user: User | None = None


def check_credentials(
    *, username: str, password: str, client: str = "", request: HttpRequest | None = None
) -> Proof | None:
    """What these credentials prove, or None. Raises Throttled.

    Every password check of every entry point (Basic on /v2 and the API, the
    token service, browser and admin login) comes here. Robots (``robot$…``) are
    a branch of their own: they are not Django users and their secrets are not
    passwords. A user's personal access token (``berth_pat_…``, or any whose
    proof is cached) is the next branch; then Django's
    ``AUTHENTICATION_BACKENDS``, so another identity source (LDAP, OIDC, CAS)
    is one more backend there; then the user's CLI secret. A token's proof
    carries no Django user: it never opens a browser session
    (docs/tokens.md). The throttle covers them all."""
    throttle = _Throttle("login-fail:" + _digest(username, client))
    throttle.check()
    proof: Proof | None
    if "\x00" in username:
        proof = None  # no account has one, and PostgreSQL cannot even compare it
    elif username.startswith(ROBOT_PREFIX):
        robot = _robot(username, password)
        proof = Proof(robot) if robot else None
    else:
        proof = _token_proof(username, password)
        if proof is None and not password.startswith(TOKEN_PREFIX):
            user = django_authenticate(request, username=username, password=password)
            proof = Proof(actor_for_user(user), user) if isinstance(user, User) else None
            if proof is None:
                proof = _cli_secret(username, password)
    if proof is None:
        throttle.failed()
    else:
        throttle.succeeded()
    return proof


def _robot(name: str, secret: str) -> Actor | None:
    robot = Robot.objects.filter(name=name).first()
    if robot is None:
        check_secret(secret, "sha256$0$" + "0" * 64)  # same work for unknown names
        return None
    if not check_secret(secret, robot.secret_hash):
        return None
    if robot.disabled or (robot.expires_at is not None and robot.expires_at <= timezone.now()):
        return None
    return actor_for_robot(robot)


# Personal access tokens and CLI secrets ----------------------------------------------


def actor_for_token(token: PersonalAccessToken) -> Actor:
    """The actor a token speaks for: its user, cut to the token's permissions
    (``access.Limit``) unless it is unrestricted (the CLI secret)."""
    user = token.user
    if token.unrestricted:
        return dataclasses.replace(actor_for_user(user), token_id=token.pk)
    return Actor(
        kind="user",
        id=user.pk,
        name=user.username,
        token_id=token.pk,
        limit=Limit(robot_grants(token.permissions), sysadmin=user.is_superuser),
    )


def cut_off(prefix: str = "") -> Q:
    """Users whose identity providers are all disabled and who have no password
    of their own (``prefix``: the path to the user, ``"user__"`` from a token):
    a disabled provider's users cannot sign in, so neither their personal
    access tokens, CLI secrets nor the registry tokens already issued to them
    work while it stays disabled (enabling it again revives them). A user with
    a local password, or an identity at another enabled provider, is not cut off."""
    user = OuterRef("user_id" if prefix else "pk")
    identities = ExternalIdentity.objects.filter(user=user)
    return (
        Exists(identities)
        & ~Exists(identities.filter(provider__enabled=True))
        & Q(**{f"{prefix}password__startswith": "!"})  # Django's unusable password
    )


def _live_tokens() -> Any:
    """Tokens that may prove something now: not revoked, unexpired, of an
    active user not cut off from sign-in (with the user: one query)."""
    now = timezone.now()
    return (
        PersonalAccessToken.objects.filter(revoked_at__isnull=True, user__is_active=True)
        .exclude(expires_at__lte=now)
        .exclude(cut_off("user__"))
        .select_related("user")
    )


def _token_proved(key: str, token: PersonalAccessToken) -> Proof:
    # Only a keyed digest of the secret's hash goes to the (shared) cache.
    _call("set", key, (token.pk, _digest(token.secret_hash)), CREDENTIAL_TTL)
    usage.used(token.pk)
    return Proof(actor_for_token(token))


def _token_proof(username: str, password: str) -> Proof | None:
    """A personal access token (``berth_pat_…``) of the user named, or any
    token whose proof is cached. A cached proof re-reads the token (one query):
    revoked, expired, its user disabled, or its secret changed, it is gone."""
    key = "tok:" + _digest(username, password)
    cached = _call("get", key)
    if cached is not None:
        token_id, secret_digest = cached
        token = _live_tokens().filter(pk=token_id, user__username=username).first()
        if token is not None and hmac.compare_digest(_digest(token.secret_hash), secret_digest):
            usage.used(token.pk)
            return Proof(actor_for_token(token))
        _call("delete", key)
    if not password.startswith(TOKEN_PREFIX) or "\x00" in password:
        return None
    token_key = password[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + KEY_LENGTH]
    token = _live_tokens().filter(key=token_key, user__username=username).first()
    if token is None:
        check_secret(password, _NO_SECRET)
        return None
    if not check_secret(password, token.secret_hash):
        return None
    return _token_proved(key, token)


def _cli_secret(username: str, password: str) -> Proof | None:
    """The user's CLI secret (Harbor's, ``PUT /users/{id}/cli_secret``), tried
    when the password is not the user's password."""
    if "\x00" in password:
        return None
    token = (
        _live_tokens()
        .filter(user__username=username, name=PersonalAccessToken.CLI_SECRET, key__isnull=True)
        .first()
    )
    if token is None or not check_secret(password, token.secret_hash):
        return None
    return _token_proved("tok:" + _digest(username, password), token)


class LocalUserBackend(ModelBackend):
    """Berth's own users: the password hash in the user row, checked once and
    then proved by the verified-credential cache.

    The cache holds (user id, keyed digest of the password hash) under a keyed
    digest of the credentials. Every use re-reads the user row (one query):
    a changed password or a disabled user invalidates the cached proof."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None or password is None:
            return None
        key = "cred:" + _digest(username, password)
        cached = _call("get", key)
        if cached is not None:
            user_id, hash_digest = cached
            user = User.objects.filter(pk=user_id, is_active=True).first()
            if user is not None and hmac.compare_digest(_digest(user.password), hash_digest):
                return user
            _call("delete", key)
        user = User.objects.filter(username=username).first()
        if user is None:
            make_password(password)  # the time a real check takes: no user oracle
            return None
        if not self.user_can_authenticate(user) or not check_password(password, user.password):
            return None
        # Only a keyed digest of the password hash goes to the (shared) cache.
        _call("set", key, (user.pk, _digest(user.password)), CREDENTIAL_TTL)
        return user


def actor_from_claims(
    kind: str, subject: str, principal_id: int | None = None, token_id: int | None = None
) -> Actor:
    """Re-load the actor a token was issued to: by its id when the token names
    one (a new principal of a deleted one's name is someone else), else by name;
    anonymous when it is gone, disabled or expired. Issued from a personal
    access token (``token_id``): that token's actor, anonymous once it is
    revoked or expired."""
    if token_id is not None:
        token = _live_tokens().filter(pk=token_id, user_id=principal_id, user__username=subject)
        found = token.first() if kind == "user" else None
        return ANONYMOUS if found is None else actor_for_token(found)
    if kind == "robot":
        robots = Robot.objects.filter(name=subject, disabled=False)
        robot = (robots if principal_id is None else robots.filter(pk=principal_id)).first()
        if robot is None or (robot.expires_at and robot.expires_at <= timezone.now()):
            return ANONYMOUS
        return actor_for_robot(robot)
    users = User.objects.filter(username=subject, is_active=True).exclude(cut_off())
    user = (users if principal_id is None else users.filter(pk=principal_id)).first()
    return actor_for_user(user) if user else ANONYMOUS


# Principals behind tokens -----------------------------------------------------------


def principal_stamp(actor: Actor) -> str:
    """What a refresh token is bound to besides the principal's id: a keyed
    digest of its secret and its ``stamp`` (a user's password hash and
    ``User.stamp``, rotated on disable and password change; a robot's secret
    hash and ``Robot.stamp``, rotated on disable). "" for nobody."""
    row: tuple[str, ...] | None = None
    if actor.token_id is not None:
        # Issued from a personal access token: dies with it (revoked, expired,
        # a new CLI secret) and with its user's stamp.
        tokens = PersonalAccessToken.objects.filter(pk=actor.token_id)
        found = tokens.values_list("secret_hash", "user__stamp").first()
        if found is None:
            return ""
        return _digest("stamp", "token", str(actor.token_id), *found)
    if actor.id is not None and actor.kind == "robot":
        row = Robot.objects.filter(pk=actor.id).values_list("secret_hash", "stamp").first()
    elif actor.id is not None and actor.kind == "user":
        user = User.objects.filter(pk=actor.id).values_list("password", "username", "stamp")
        row = user.first()
        if row is not None and not row[-1]:
            # Never rotated: the digest of the release before User.stamp, so its
            # refresh tokens outlive the upgrade.
            row = row[:-1]
    return "" if row is None else _digest("stamp", actor.kind, str(actor.id), *row)


def actor_for_refresh(claims: dict[str, Any]) -> Actor:
    """The actor a refresh token still speaks for: the principal of its id and
    name, enabled, with the stamp it was issued under; anonymous otherwise (the
    secret was refreshed or the password changed, the principal was disabled or
    deleted, or the token predates the binding)."""
    principal_id = claims.get("pid")
    if not isinstance(principal_id, int) or isinstance(principal_id, bool):
        return ANONYMOUS
    token_id = claims.get("tid")
    if token_id is not None and (not isinstance(token_id, int) or isinstance(token_id, bool)):
        return ANONYMOUS
    actor = actor_from_claims(
        claims.get("kind", "user"), claims.get("sub", ""), principal_id, token_id
    )
    stamp = claims.get("stp")
    if not actor.authenticated or not isinstance(stamp, str):
        return ANONYMOUS
    return actor if hmac.compare_digest(stamp, principal_stamp(actor)) else ANONYMOUS


_principals = ThreadHandle("principals")  # read on every request with a token


def _principal_key(kind: str, principal_id: int | None, name: str) -> str:
    return f"{kind}:{principal_id if principal_id is not None else 'name:' + name}"


def _active_key(kind: str, principal_id: int | None, name: str, token_id: int | None) -> str:
    return f"token:{token_id}" if token_id is not None else _principal_key(kind, principal_id, name)


def principal_active(
    kind: str, principal_id: int | None, name: str, token_id: int | None = None
) -> bool:
    """Is the principal a token names still there and enabled (a robot also
    unexpired; a personal access token it was issued from, ``token_id``, not
    revoked or expired)? Asked for every request that carries a token, and
    answered from this process's memory (``CACHES["principals"]``: one
    ``dict.get``) for ``BERTH_PRINCIPAL_RECHECK_SECONDS``: a process asks the
    database at most once per principal per interval, and a disabled or
    deleted principal's (or a revoked token's) tokens stop working within it."""
    known = principal_known_active(kind, principal_id, name, token_id)
    if known is not None:
        return known
    active = actor_from_claims(kind, name, principal_id, token_id).authenticated
    _principals().set(
        _active_key(kind, principal_id, name, token_id),
        active,
        settings.BERTH_PRINCIPAL_RECHECK_SECONDS,
    )
    return active


def principal_known_active(
    kind: str, principal_id: int | None, name: str, token_id: int | None = None
) -> bool | None:
    """``principal_active`` from this process's memory only: None when the
    answer would need the database (the manifest fast path, registry/oci/fast.py,
    then leaves the request to the full path, which asks and remembers)."""
    if kind not in ("user", "robot"):
        return True
    active = _principals().get(_active_key(kind, principal_id, name, token_id))
    return None if active is None else bool(active)


def token_changed(token_id: int) -> None:
    """Forget this process's answer about a token just revoked (other
    processes notice within their recheck interval)."""
    _principals().delete(f"token:{token_id}")


def principal_changed(kind: str, principal_id: int, name: str) -> None:
    """Forget this process's answer about a principal that was just disabled or
    deleted (other processes notice within their recheck interval)."""
    cache = _principals()
    cache.delete(_principal_key(kind, principal_id, name))
    cache.delete(_principal_key(kind, None, name))
