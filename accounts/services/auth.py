"""Checking credentials: users (password, checked once then cached) and robots
(secret), with guessing throttled per (name, client) — never a lockout an
attacker could aim at someone else."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import caches
from django.utils import timezone

from accounts.access import ANONYMOUS, Actor, robot_grants
from accounts.models import Robot, User
from accounts.services.secrets import check_secret

ROBOT_PREFIX = "robot$"
CREDENTIAL_TTL = 300


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


def _cache():  # type: ignore[no-untyped-def]
    return caches["default"]


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
        failures = _cache().get(self.key, 0)
        if failures >= settings.BERTH_LOGIN_FAILURES_ALLOWED:
            raise Throttled(settings.BERTH_LOGIN_THROTTLE_SECONDS)

    def failed(self) -> None:
        cache = _cache()
        if not cache.add(self.key, 1, settings.BERTH_LOGIN_THROTTLE_SECONDS):
            try:
                cache.incr(self.key)
            except ValueError:
                cache.set(self.key, 1, settings.BERTH_LOGIN_THROTTLE_SECONDS)

    def succeeded(self) -> None:
        _cache().delete(self.key)


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
    cache = _cache()
    key = "cred:" + _digest(username, password)
    cached = cache.get(key)
    if cached is not None:
        user_id, password_hash = cached
        user = User.objects.filter(pk=user_id, is_active=True).first()
        # A changed password or a disabled user invalidates the cached proof.
        if user is not None and user.password == password_hash:
            return actor_for_user(user)
        cache.delete(key)
    user = User.objects.filter(username=username).first()
    if user is None:
        make_password(password)  # the time a real check takes: no user oracle
        return None
    if not user.is_active or not check_password(password, user.password):
        return None
    cache.set(key, (user.pk, user.password), CREDENTIAL_TTL)
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
