"""Users: create (by a sysadmin, or self-registration when enabled), the
profile, passwords, the sysadmin flag, enable and disable, delete, search.

A user's ``stamp`` is rotated when it is disabled and when its password is set:
its refresh tokens are bound to it (accounts/services/auth.py, principal_stamp),
so none outlives the change, and enabling the user again revives none."""

from __future__ import annotations

import re
import secrets
from functools import partial

from django.db import IntegrityError, models, transaction

from accounts.access import Actor
from accounts.errors import Conflict, Denied, Invalid, NotFound, Unauthenticated
from accounts.models import User
from accounts.passwords import POLICY, password_ok
from accounts.services import config
from accounts.services.auth import principal_changed
from audit.events import Operation, Resource
from audit.services import record

# Harbor's forbidden characters, plus control characters (a NUL is stored by
# SQLite and refused by PostgreSQL: refuse it on both, before the database).
USERNAME_RE = re.compile(r"[^\s\x00-\x1f\x7f,~#$%\"':;*?<>|/\\]{1,255}")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _check_text(field: str, value: str) -> None:
    column = User._meta.get_field(field)
    max_length = column.max_length if isinstance(column, models.CharField) else None
    if max_length is not None and len(value) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters")
    if CONTROL_RE.search(value):
        raise Invalid(f"{field} contains a control character")


def user_create(
    *,
    actor: Actor,
    username: str,
    password: str,
    email: str = "",
    realname: str = "",
    comment: str = "",
) -> User:
    """Only these fields are read: a body carrying ``sysadmin_flag`` or ``admin``
    cannot raise privileges (the API never passes them)."""
    if not actor.sysadmin and (actor.authenticated or not config.get("self_registration")):
        raise Denied("only system administrators may create users")
    if not USERNAME_RE.fullmatch(username or "") or username.startswith("robot$"):
        raise Invalid("invalid username")
    for field, value in (("email", email), ("realname", realname), ("comment", comment)):
        _check_text(field, value or "")
    if not password_ok(password or ""):
        raise Invalid(f"password must have {POLICY}")
    user = User(
        username=username, email=email or "", realname=realname or "", comment=comment or ""
    )
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            record(
                actor=actor,
                operation=Operation.CREATE,
                resource_type=Resource.USER,
                resource=username,
            )
    except IntegrityError:
        raise Conflict(f"user {username} already exists") from None
    return user


def user_get(*, actor: Actor, user_id: int) -> User:
    if not (actor.sysadmin or (actor.kind == "user" and actor.id == user_id)):
        raise Denied("not allowed")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        # Only a sysadmin (or the user) gets here, so the id may be echoed.
        raise NotFound(str(user_id), message=f"user {user_id} not found")
    return user


def _not_through_scoped_token(actor: Actor) -> None:
    """A scoped personal access token acts only where its permissions say: an
    account's profile and password are not among them (docs/tokens.md)."""
    if actor.limit is not None:
        raise Denied("a scoped access token cannot change an account")


def user_set_password(*, actor: Actor, user_id: int, old: str, new: str) -> None:
    if not actor.authenticated:
        raise Unauthenticated()
    user = user_get(actor=actor, user_id=user_id)
    own = actor.kind == "user" and actor.id == user.pk
    _not_through_scoped_token(actor)
    if own and not user.check_password(old or ""):
        raise Invalid("the old password is wrong")
    if not own and not actor.sysadmin:
        raise Denied("not allowed")
    if not password_ok(new or ""):
        raise Invalid(f"password must have {POLICY}")
    if own and old == new:
        raise Invalid("the new password must differ from the old one")
    user.set_password(new)
    user.stamp = secrets.token_hex(16)
    with transaction.atomic():
        user.save(update_fields=["password", "stamp"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.USER,
            resource=user.username,
            detail={"field": "password"},
        )


def user_update_profile(
    *,
    actor: Actor,
    user_id: int,
    email: str | None = None,
    realname: str | None = None,
    comment: str | None = None,
) -> User:
    """Harbor's updateUserProfile: the user itself or a sysadmin; the fields
    given (None: unchanged)."""
    if not actor.authenticated:
        raise Unauthenticated()
    user = user_get(actor=actor, user_id=user_id)
    _not_through_scoped_token(actor)
    changes = {"email": email, "realname": realname, "comment": comment}
    changed = [name for name, value in changes.items() if value is not None]
    for name in changed:
        value = changes[name] or ""
        _check_text(name, value)
        setattr(user, name, value)
    if not changed:
        return user
    with transaction.atomic():
        user.save(update_fields=changed)
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.USER,
            resource=user.username,
            detail={"fields": changed},
        )
    return user


def user_set_active(*, actor: Actor, user_id: int, active: bool) -> User:
    """Enable or disable a user (sysadmins; never the initial administrator or
    oneself). Disabling rotates the stamp: the user's refresh tokens die and stay
    dead; its access tokens end within BERTH_PRINCIPAL_RECHECK_SECONDS (in this
    process at once)."""
    if not actor.sysadmin or actor.kind != "user":
        raise Denied("only system administrators may enable or disable users")
    if user_id in (1, actor.id):
        raise Invalid("the initial administrator and you yourself stay active")
    user = user_get(actor=actor, user_id=user_id)
    if user.is_active == active:
        return user
    user.is_active = active
    if not active:
        user.stamp = secrets.token_hex(16)
    with transaction.atomic():
        user.save(update_fields=["is_active", "stamp"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.USER,
            resource=user.username,
            detail={"active": active},
        )
        _forget_on_commit(user)
    return user


def _forget_on_commit(user: User) -> None:
    transaction.on_commit(partial(principal_changed, "user", user.pk, user.username))


def user_set_sysadmin(*, actor: Actor, user_id: int, flag: bool) -> User:
    if not actor.sysadmin or actor.kind != "user":
        raise Denied("only system administrators may change the sysadmin flag")
    user = user_get(actor=actor, user_id=user_id)
    if user.pk == 1 and not flag:
        raise Invalid("the initial administrator stays a sysadmin")
    user.is_superuser = user.is_staff = bool(flag)
    with transaction.atomic():
        user.save(update_fields=["is_superuser", "is_staff"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.USER,
            resource=user.username,
            detail={"sysadmin_flag": user.is_superuser},
        )
    return user


def user_delete(*, actor: Actor, user_id: int) -> None:
    if not actor.sysadmin:
        raise Denied("only system administrators may delete users")
    if user_id == 1 or (actor.kind == "user" and actor.id == user_id):
        raise Invalid("this user cannot be deleted")
    with transaction.atomic():
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise NotFound(str(user_id), message=f"user {user_id} not found")
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.USER,
            resource=user.username,
        )
        _forget_on_commit(user)
        user.delete()
