"""Binding a browser sign-in at an OpenID Provider or a CAS server to a Berth
user — what both kinds share (accounts/oidc.py and accounts/cas.py verify the
provider's answer; this decides who it is).

- An identity is bound by (provider, subject): the OIDC ``sub`` or the CAS
  user, never by matching user names. A bound identity signs in as its user,
  whatever its name has become.
- An unknown identity becomes a new user when the provider allows it, under
  the name the provider suggests; when that name is taken (a local user, or
  another provider's) the sign-in waits for the person to choose another name
  (``Onboarding``: Harbor's ``/c/oidc/onboard``).
- Groups: the provider's group names (filtered by its ``group_filter``) become
  Berth user groups of the provider's type, and the user's memberships in that
  provider's groups are exactly those of this sign-in; membership in the
  ``admin_group`` makes the user a system administrator (and its absence,
  when one is configured, takes that away).

Every change is audited in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.errors import Invalid
from accounts.models import ExternalIdentity, GroupMembership, IdentityProvider, User, UserGroup
from audit.events import Operation, Resource
from audit.services import record
from kit import patterns

MAX_USERNAME = 150  # the user table's column
MAX_GROUPS = 1000


class SignInRefused(Exception):
    """The provider proved an identity Berth will not let in (not allowed to
    create users, a disabled user, a provider gone). The message is safe to
    show."""


@dataclass(frozen=True)
class Assertion:
    """What a provider said about the person signing in."""

    subject: str
    username: str  # the name it suggests for a new user
    email: str = ""
    realname: str = ""
    groups: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class Onboarding(Exception):
    """The suggested name is taken: the person must choose another
    (``complete_onboarding``)."""

    def __init__(self, provider: IdentityProvider, assertion: Assertion) -> None:
        super().__init__(f"the user name {assertion.username!r} is taken")
        self.provider = provider
        self.assertion = assertion


def group_type(provider: IdentityProvider) -> int:
    # CAS groups are Harbor's "HTTP" groups (an authenticating front's names).
    if provider.kind == IdentityProvider.Kind.OIDC:
        return int(UserGroup.Type.OIDC)
    return int(UserGroup.Type.HTTP)


def filter_groups(provider: IdentityProvider, names: Iterable[Any]) -> tuple[str, ...]:
    """The provider's group names Berth keeps: strings, matching the provider's
    ``group_filter`` regular expression (RE2, kit.patterns) when it has one."""
    source = str(provider.config.get("group_filter", "") or "")
    pattern = patterns.regex(source) if source else None
    kept: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name or len(name) > 255 or "\x00" in name:
            continue
        if pattern is None or pattern.matches(name):
            kept.append(name)
    return tuple(dict.fromkeys(kept))[:MAX_GROUPS]


def _actor(user: User) -> Actor:
    return Actor(kind="user", id=user.pk, name=user.username, sysadmin=user.is_superuser)


def sign_in(provider: IdentityProvider, assertion: Assertion) -> User:
    """The user this assertion proves (creating it when allowed). Raises
    Onboarding or SignInRefused."""
    if not provider.enabled:
        raise SignInRefused("this identity provider is disabled")
    with transaction.atomic():
        identity = (
            ExternalIdentity.objects.select_for_update()
            .select_related("user")
            .filter(provider=provider, subject=assertion.subject)
            .first()
        )
        if identity is None:
            if not provider.allow_create_users:
                raise SignInRefused("this identity provider does not create users")
            if not valid_username(assertion.username) or (
                User.objects.filter(username__iexact=assertion.username).exists()
            ):
                # Taken, or no valid Berth name (e.g. a display name with spaces).
                raise Onboarding(provider, assertion)
            user = _create(provider, assertion, assertion.username)
        else:
            user = identity.user
            if not user.is_active:
                raise SignInRefused("this account is disabled")
            identity.details = assertion.details
            identity.last_seen_at = timezone.now()
            identity.save(update_fields=["details", "last_seen_at"])
        _sync(provider, user, assertion)
    return user


def valid_username(name: str) -> bool:
    """A name Berth's users may have (accounts/services/users.py's rule)."""
    from accounts.services.users import USERNAME_RE  # users → config → oidc → here

    return (
        len(name) <= MAX_USERNAME
        and USERNAME_RE.fullmatch(name) is not None
        and not name.startswith("robot$")
    )


def complete_onboarding(provider: IdentityProvider, assertion: Assertion, username: str) -> User:
    """Create the user of an onboarding under the name the person chose.
    Raises Invalid (a bad or taken name) or SignInRefused."""
    if not valid_username(username):
        raise Invalid(
            f"a user name is 1-{MAX_USERNAME} characters without spaces, controls"
            " or any of , ~ # $ % \" ' : ; * ? < > | / \\, and not robot$…"
        )
    if not provider.enabled or not provider.allow_create_users:
        raise SignInRefused("this identity provider does not create users")
    try:
        with transaction.atomic():
            if ExternalIdentity.objects.filter(
                provider=provider, subject=assertion.subject
            ).exists():
                raise SignInRefused("this identity is already bound to a user")
            if User.objects.filter(username__iexact=username).exists():
                raise Invalid(f"the user name {username!r} is taken")
            user = _create(provider, assertion, username)
            _sync(provider, user, assertion)
    except IntegrityError:
        raise Invalid(f"the user name {username!r} is taken") from None
    return user


def _create(provider: IdentityProvider, assertion: Assertion, username: str) -> User:
    user = User(
        username=username,
        email=assertion.email[:254],
        realname=assertion.realname[:255],
        is_active=True,
    )
    # No password: this user signs in through its provider (and docker login
    # with a personal access token).
    user.set_unusable_password()
    user.save()
    ExternalIdentity.objects.create(
        provider=provider,
        subject=assertion.subject,
        user=user,
        details=assertion.details,
        last_seen_at=timezone.now(),
    )
    record(
        actor=_actor(user),
        operation=Operation.CREATE,
        resource_type=Resource.USER,
        resource=username,
    )
    return user


def _sync(provider: IdentityProvider, user: User, assertion: Assertion) -> None:
    """The user's groups of this provider become exactly the assertion's; the
    admin group decides the sysadmin flag when one is configured."""
    names = filter_groups(provider, assertion.groups)
    kind = group_type(provider)
    existing = {g.name: g for g in UserGroup.objects.filter(type=kind, name__in=names)}
    for name in names:
        if name not in existing:
            try:
                with transaction.atomic():
                    existing[name] = UserGroup.objects.create(
                        name=name, type=kind, provider=provider
                    )
            except IntegrityError:  # created meanwhile by another sign-in
                existing[name] = UserGroup.objects.get(type=kind, name=name)
    wanted = {g.pk for g in existing.values()}
    mine = GroupMembership.objects.filter(user=user, group__type=kind)
    mine.exclude(group_id__in=wanted).delete()
    have = set(mine.values_list("group_id", flat=True))
    GroupMembership.objects.bulk_create(
        [GroupMembership(user=user, group_id=pk) for pk in sorted(wanted - have)],
        ignore_conflicts=True,
    )
    admin_group = str(provider.config.get("admin_group", "") or "")
    if admin_group:
        is_admin = admin_group in assertion.groups
        if user.is_superuser != is_admin and user.pk != 1:
            # As PUT /users/{id}/sysadmin sets it (accounts/services/users.py).
            user.is_superuser = user.is_staff = is_admin
            user.save(update_fields=["is_superuser", "is_staff"])
            record(
                actor=_actor(user),
                operation=Operation.UPDATE,
                resource_type=Resource.USER,
                resource=user.username,
                detail={"sysadmin_flag": is_admin, "by": f"admin group of {provider.name}"},
            )


def sign_in_buttons() -> list[dict[str, str]]:
    """One sign-in button per enabled OpenID Provider and CAS server, in the
    providers' order (one query), for the sign-in page."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    rows = IdentityProvider.objects.filter(
        enabled=True, kind__in=[IdentityProvider.Kind.OIDC, IdentityProvider.Kind.CAS]
    ).order_by("order", "id")

    def url(p: IdentityProvider) -> str:
        if p.kind == IdentityProvider.Kind.CAS:
            return reverse("cas-login", args=[p.name])
        return reverse("oidc-login") + "?" + urlencode({"provider": p.name})

    return [
        {
            "name": p.name,
            "label": _("Sign in with %(name)s") % {"name": p.name},
            "url": url(p),
        }
        for p in rows
    ]


class SsoSessionBackend:
    """The backend of browser sessions signed in through an OpenID Provider or
    a CAS server (``accounts/sso_views.py`` logs users in with it). It proves
    no credentials; it reloads a session's user while that user is active and
    bound to an enabled OIDC or CAS provider, so disabling (or deleting) the
    provider ends its users' sessions (one query per request, as Django's own
    backend)."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def get_user(self, user_id: int) -> User | None:
        return (
            User.objects.filter(
                pk=user_id,
                is_active=True,
                identities__provider__kind__in=[
                    IdentityProvider.Kind.OIDC,
                    IdentityProvider.Kind.CAS,
                ],
                identities__provider__enabled=True,
            )
            .distinct()
            .first()
        )
