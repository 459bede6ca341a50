"""Checking credentials: users (through Django's ``AUTHENTICATION_BACKENDS``;
the local one checks a password once, then caches the proof) and robots
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

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import caches
from django.http import HttpRequest
from django.utils import timezone

from accounts.access import ANONYMOUS, Actor, robot_grants
from accounts.models import Robot, User
from accounts.services.secrets import check_secret
from kit.cache import CacheUnavailable

ROBOT_PREFIX = "robot$"
CREDENTIAL_TTL = 300


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
    passwords. Users go through Django's ``AUTHENTICATION_BACKENDS``, so another
    identity source (LDAP, OIDC, CAS) is one more backend there; the throttle
    covers them all."""
    throttle = _Throttle("login-fail:" + _digest(username, client))
    throttle.check()
    proof: Proof | None
    if "\x00" in username:
        proof = None  # no account has one, and PostgreSQL cannot even compare it
    elif username.startswith(ROBOT_PREFIX):
        robot = _robot(username, password)
        proof = Proof(robot) if robot else None
    else:
        user = django_authenticate(request, username=username, password=password)
        proof = Proof(actor_for_user(user), user) if isinstance(user, User) else None
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


def actor_from_claims(kind: str, subject: str) -> Actor:
    """Re-load the actor a token was issued to (for refresh tokens)."""
    if kind == "robot":
        robot = Robot.objects.filter(name=subject, disabled=False).first()
        if robot is None or (robot.expires_at and robot.expires_at <= timezone.now()):
            return ANONYMOUS
        return actor_for_robot(robot)
    user = User.objects.filter(username=subject, is_active=True).first()
    return actor_for_user(user) if user else ANONYMOUS
