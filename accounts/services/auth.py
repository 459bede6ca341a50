"""Checking credentials: users (password, checked once then cached) and robots
(secret), with guessing throttled per (name, client) — never a lockout an
attacker could aim at someone else.

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
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import caches
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


def authenticate(*, username: str, password: str, client: str = "") -> Actor | None:
    """The actor these credentials prove, or None. Raises Throttled."""
    throttle = _Throttle("login-fail:" + _digest(username, client))
    throttle.check()
    if "\x00" in username:
        actor = None  # no account has one, and PostgreSQL cannot even compare it
    elif username.startswith(ROBOT_PREFIX):
        actor = _robot(username, password)
    else:
        actor = _user(username, password)
    if actor is None:
        throttle.failed()
    else:
        throttle.succeeded()
    return actor


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


def _user(username: str, password: str) -> Actor | None:
    key = "cred:" + _digest(username, password)
    cached = _call("get", key)
    if cached is not None:
        user_id, hash_digest = cached
        user = User.objects.filter(pk=user_id, is_active=True).first()
        # A changed password or a disabled user invalidates the cached proof.
        if user is not None and hmac.compare_digest(_digest(user.password), hash_digest):
            return actor_for_user(user)
        _call("delete", key)
    user = User.objects.filter(username=username).first()
    if user is None:
        make_password(password)  # the time a real check takes: no user oracle
        return None
    if not user.is_active or not check_password(password, user.password):
        return None
    # Only a keyed digest of the password hash goes to the (shared) cache.
    _call("set", key, (user.pk, _digest(user.password)), CREDENTIAL_TTL)
    return actor_for_user(user)


def actor_from_claims(kind: str, subject: str) -> Actor:
    """Re-load the actor a token was issued to (for refresh tokens)."""
    if kind == "robot":
        robot = Robot.objects.filter(name=subject, disabled=False).first()
        if robot is None or (robot.expires_at and robot.expires_at <= timezone.now()):
            return ANONYMOUS
        return actor_for_robot(robot)
    user = User.objects.filter(username=subject, is_active=True).first()
    return actor_for_user(user) if user else ANONYMOUS
