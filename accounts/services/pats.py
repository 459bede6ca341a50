"""Personal access tokens and Harbor's CLI secret (docs/tokens.md).

A token is its user's password for machines — ``docker login``, ``/v2`` Basic,
the API — never for a browser session. It names permissions in robots'
vocabulary and acts with what both they and its user allow at the time of use
(``accounts.access.Limit``); it may expire, is revoked (never deleted: the list
keeps what existed), and its secret is shown once. The CLI secret is one
special token per user, unrestricted and chosen by the user, which Harbor's
``PUT /users/{id}/cli_secret`` sets and ``GET /users/current`` shows.
"""

from __future__ import annotations

import datetime
import re
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.access import Actor, robot_grants
from accounts.errors import Conflict, Denied, Invalid, NotFound, Unauthenticated
from accounts.models import PersonalAccessToken, Project, User
from accounts.passwords import POLICY, password_ok
from accounts.services.auth import KEY_LENGTH, TOKEN_PREFIX, token_changed
from accounts.services.robots import clean_permissions
from accounts.services.secrets import generate_secret, hash_secret
from audit.events import Operation, Resource
from audit.services import record
from kit.sealed import SealedError, seal, unseal

NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._ -]{0,98}[A-Za-z0-9._-])?")
SECRET_LENGTH = 32


def _require_user(actor: Actor, *, what: str) -> int:
    """Tokens are made by a user signed in with their own credentials: not
    anonymous, not a robot, not another token (a token never mints a stronger
    or longer-lived one)."""
    if not actor.authenticated:
        raise Unauthenticated()
    if actor.kind != "user" or actor.id is None:
        raise Denied(f"only users may {what}")
    if actor.token_id is not None:
        raise Denied(f"sign in with your password to {what}, not with a token")
    return actor.id


def _expiry(duration: Any) -> datetime.datetime | None:
    """``duration`` in days (-1: never), within ``BERTH_ACCESS_TOKEN_MAX_DAYS``."""
    if (
        not isinstance(duration, int)
        or isinstance(duration, bool)
        or duration == 0
        or duration < -1
    ):
        raise Invalid("duration must be a positive number of days or -1")
    limit = settings.BERTH_ACCESS_TOKEN_MAX_DAYS
    if limit and (duration == -1 or duration > limit):
        raise Invalid(f"a token must expire within {limit} days")
    if duration == -1:
        return None
    return timezone.now() + datetime.timedelta(days=min(duration, 365_000))


def _require_grantable(actor: Actor, perms: list[dict[str, Any]]) -> None:
    """The projects named exist and the user holds what the token names there,
    and system permissions only a system administrator holds. A grant on every
    project (``*``) is allowed to anyone: at use it is cut to the user's rights."""
    grants = robot_grants(perms)
    names = {g.namespace for g in grants if g.kind == "project" and g.namespace != "*"}
    found = set(Project.objects.filter(name__in=names).values_list("name", flat=True))
    if names - found:
        raise Invalid(f"no project {sorted(names - found)[0]}")
    named = [g for g in grants if not (g.kind == "project" and g.namespace == "*")]
    access.require_holds(actor, named, what="the token")


def _new_secret() -> tuple[str, str]:
    """(key, the whole token): ``berth_pat_`` + key + secret, letters and digits."""
    body = generate_secret(KEY_LENGTH + SECRET_LENGTH)
    return body[:KEY_LENGTH], TOKEN_PREFIX + body


def token_create(
    *, actor: Actor, name: Any, permissions: Any, duration: Any = -1
) -> tuple[PersonalAccessToken, str]:
    """A new token of the actor (a user); its secret, returned here only."""
    user_id = _require_user(actor, what="create access tokens")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid(
            "token name: 1-100 letters, digits, spaces, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    if name == PersonalAccessToken.CLI_SECRET:
        raise Invalid(f"{name} is the CLI secret's name: set it with PUT /users/{{id}}/cli_secret")
    perms = clean_permissions(permissions)
    _require_grantable(actor, perms)
    key, secret = _new_secret()
    token = PersonalAccessToken(
        user_id=user_id,
        name=name,
        key=key,
        secret_hash=hash_secret(secret),
        permissions=perms,
        expires_at=_expiry(duration),
    )
    try:
        with transaction.atomic():
            token.save()
            record(
                actor=actor,
                operation=Operation.CREATE,
                resource_type=Resource.ACCESS_TOKEN,
                resource=f"{actor.name}/{name}",
                detail={
                    "permissions": perms,
                    "expires_at": token.expires_at.isoformat() if token.expires_at else None,
                },
            )
    except IntegrityError:
        raise Conflict(f"you already have a token named {name}") from None
    return token, secret


def tokens_visible(*, actor: Actor, user_id: int | None = None) -> QuerySet[PersonalAccessToken]:
    """The actor's own tokens, or (a system administrator) those of
    ``user_id``, or everyone's when ``user_id`` is None. Revoked ones included."""
    if not actor.authenticated:
        raise Unauthenticated()
    rows = PersonalAccessToken.objects.select_related("user")
    if actor.sysadmin:
        return rows if user_id is None else rows.filter(user_id=user_id)
    if actor.kind != "user" or actor.id is None or user_id not in (None, actor.id):
        raise Denied("only system administrators may see other users' tokens")
    return rows.filter(user_id=actor.id)


def token_get(*, actor: Actor, token_id: int) -> PersonalAccessToken:
    """A token the actor may see; NotFound for others' (no oracle)."""
    if not actor.authenticated:
        raise Unauthenticated()
    rows = PersonalAccessToken.objects.select_related("user")
    if not actor.sysadmin:
        rows = rows.filter(user_id=actor.id if actor.kind == "user" and actor.id else -1)
    token = rows.filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"token {token_id}")
    return token


def token_revoke(*, actor: Actor, token_id: int) -> PersonalAccessToken:
    """Revoke one of the actor's tokens (a system administrator: anyone's).
    Basic credentials with it fail at once; registry tokens and refresh tokens
    issued from it within ``BERTH_PRINCIPAL_RECHECK_SECONDS``. Revoking a
    revoked token changes nothing."""
    token = token_get(actor=actor, token_id=token_id)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    with transaction.atomic():
        token.save(update_fields=["revoked_at"])
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.ACCESS_TOKEN,
            resource=f"{token.user.username}/{token.name}",
        )
        transaction.on_commit(partial(token_changed, token.pk))
    return token


# Harbor's CLI secret -------------------------------------------------------------


def cli_secret_set(*, actor: Actor, user_id: int, secret: Any) -> None:
    """Harbor's ``PUT /users/{id}/cli_secret``: the user itself (signed in
    with its own credentials) or a system administrator. The secret follows
    Harbor's rule (the password policy); the previous one, and every token
    issued from it, stops working."""
    if not actor.authenticated:
        raise Unauthenticated()
    own = actor.kind == "user" and actor.id == user_id
    if not (own or access.system_can(actor, "user", "update")):
        raise Denied(f"Not authorized to update the CLI secret for user: {user_id}")
    if own or actor.kind == "user":
        _require_user(actor, what="set a CLI secret")
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(str(user_id), message=f"user {user_id} not found")
    if not isinstance(secret, str) or not password_ok(secret):
        raise Invalid(f"the secret must have {POLICY}")
    now = timezone.now()
    with transaction.atomic():
        previous = list(
            PersonalAccessToken.objects.select_for_update().filter(
                user=user, name=PersonalAccessToken.CLI_SECRET, revoked_at__isnull=True
            )
        )
        PersonalAccessToken.objects.filter(pk__in=[t.pk for t in previous]).update(revoked_at=now)
        PersonalAccessToken.objects.create(
            user=user,
            name=PersonalAccessToken.CLI_SECRET,
            key=None,
            secret_hash=hash_secret(secret),
            secret_sealed=seal(secret),
            unrestricted=True,
        )
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.USER,
            resource=user.username,
            detail={"field": "cli_secret"},
        )
        for token in previous:
            transaction.on_commit(partial(token_changed, token.pk))


def cli_secret_of(*, actor: Actor) -> tuple[PersonalAccessToken, str] | None:
    """The caller's own live CLI secret and its value, shown back to its owner
    as Harbor does — only when signed in with its own credentials, never
    through a token (a narrow token must not read the secret that may do
    everything)."""
    if actor.kind != "user" or actor.id is None or actor.token_id is not None:
        return None
    token = PersonalAccessToken.objects.filter(
        user_id=actor.id, name=PersonalAccessToken.CLI_SECRET, revoked_at__isnull=True
    ).first()
    if token is None or not token.secret_sealed:
        return None
    try:
        return token, unseal(token.secret_sealed)
    except SealedError:
        return None  # sealed under a key no longer configured: set a new one
