"""User groups (Harbor's ``/usergroups``): LDAP groups by DN, OIDC groups by
the groups claim's value, HTTP groups by name. A group may be a project member
(``accounts.models.Member.group``); who is in it is written when a provider
says so (``set_memberships``: at sign-in and by the refresh job), so every
access decision reads only Berth's tables (``accounts.access.member_rows``).

Administering groups is the system administrator's; any signed-in user may
search them (Harbor's ``/usergroups/search``, for adding one as a member).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.access import Actor, require_system
from accounts.errors import Conflict, Invalid, NotFound, Unauthenticated
from accounts.models import GroupMembership, IdentityProvider, User, UserGroup
from audit.events import Operation, Resource
from audit.services import record

GroupType = UserGroup.Type


def normalize_dn(dn: str) -> str:
    """A DN compared as directories compare it: attribute names and values
    case-insensitively, without the spaces around separators. Escaped
    characters are kept as written."""
    parts = []
    for rdn in _split(dn, ","):
        pieces = []
        for ava in _split(rdn, "+"):
            name, _, value = ava.partition("=")
            pieces.append(f"{name.strip().lower()}={value.strip().lower()}")
        parts.append("+".join(pieces))
    return ",".join(parts)


def _split(text: str, sep: str) -> list[str]:
    out, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _type(value: Any) -> int:
    if value not in GroupType.values:
        raise Invalid("group_type must be 1 (LDAP), 2 (HTTP) or 3 (OIDC)")
    return int(value)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255 or "\x00" in value:
        raise Invalid("group_name must be 1-255 characters")
    return value.strip()


def _dn(value: Any) -> str:
    if not isinstance(value, str) or "=" not in value or len(value) > 1024 or "\x00" in value:
        raise Invalid("ldap_group_dn must be a distinguished name")
    return normalize_dn(value)


def group_search(*, actor: Actor, name: str = "") -> QuerySet[UserGroup]:
    """Groups whose name contains ``name``: for anyone signed in."""
    if not actor.authenticated:
        raise Unauthenticated()
    groups = UserGroup.objects.all()
    return groups.filter(name__icontains=name) if name else groups


def group_list(
    *, actor: Actor, name: str = "", ldap_group_dn: str = "", group_type: int | None = None
) -> QuerySet[UserGroup]:
    require_system(actor, "user-group", "list")
    groups = UserGroup.objects.all()
    if name:
        groups = groups.filter(name__icontains=name)
    if ldap_group_dn:
        groups = groups.filter(ldap_group_dn=normalize_dn(ldap_group_dn))
    if group_type is not None:
        groups = groups.filter(type=group_type)
    return groups


def group_get(*, actor: Actor, group_id: int) -> UserGroup:
    require_system(actor, "user-group", "read")
    group = UserGroup.objects.filter(pk=group_id).first()
    if group is None:
        raise NotFound(str(group_id), message=f"user group {group_id} not found")
    return group


def _audit(actor: Actor, operation: Operation, group: UserGroup, **detail: Any) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.USER_GROUP,
        resource=group.name,
        detail={"group_type": group.type, **detail},
    )


def group_create(
    *,
    actor: Actor,
    group_name: Any,
    group_type: Any,
    ldap_group_dn: Any = "",
    provider: IdentityProvider | None = None,
) -> UserGroup:
    require_system(actor, "user-group", "create")
    kind = _type(group_type)
    group = UserGroup(name=_name(group_name), type=kind, provider=provider)
    if kind == GroupType.LDAP:
        group.ldap_group_dn = _dn(ldap_group_dn)
    elif ldap_group_dn:
        raise Invalid("ldap_group_dn is for LDAP groups only")
    try:
        with transaction.atomic():
            group.save()
            _audit(actor, Operation.CREATE, group)
    except IntegrityError:
        raise Conflict("the user group exists") from None
    return group


def group_update(*, actor: Actor, group_id: int, group_name: Any) -> UserGroup:
    """Rename a group (Harbor changes nothing else)."""
    require_system(actor, "user-group", "update")
    group = group_get(actor=actor, group_id=group_id)
    group.name = _name(group_name)
    try:
        with transaction.atomic():
            group.save(update_fields=["name", "updated_at"])
            _audit(actor, Operation.UPDATE, group)
    except IntegrityError:
        raise Conflict("a user group of that name exists") from None
    return group


def group_delete(*, actor: Actor, group_id: int) -> None:
    """Delete a group, its memberships and the project memberships it held."""
    require_system(actor, "user-group", "delete")
    group = group_get(actor=actor, group_id=group_id)
    with transaction.atomic():
        _audit(actor, Operation.DELETE, group)
        group.delete()


def group_for_member(*, actor: Actor, spec: Any) -> UserGroup:
    """The group Harbor's ``member_group`` names (``id``, or ``ldap_group_dn``
    for an LDAP group, or ``group_name`` with ``group_type``); an HTTP or OIDC
    group named for the first time is created, as Harbor does. The caller has
    already been allowed to add members."""
    if not isinstance(spec, dict):
        raise Invalid("member_group must be an object")
    group_id = spec.get("id")
    if group_id:
        if not isinstance(group_id, int) or isinstance(group_id, bool):
            raise Invalid("member_group.id must be an integer")
        group = UserGroup.objects.filter(pk=group_id).first()
        if group is None:
            raise Invalid(f"no user group {group_id}")
        return group
    dn = spec.get("ldap_group_dn") or ""
    kind = _type(spec.get("group_type") or (GroupType.LDAP if dn else None))
    if kind == GroupType.LDAP:
        normalized = _dn(dn)
        group = UserGroup.objects.filter(type=kind, ldap_group_dn=normalized).first()
        return group or _onboard_ldap_group(actor, normalized)
    name = _name(spec.get("group_name"))
    group = UserGroup.objects.filter(type=kind, name=name).first()
    if group is None:
        try:
            with transaction.atomic():
                group = UserGroup.objects.create(type=kind, name=name)
                _audit(actor, Operation.CREATE, group)
        except IntegrityError:
            group = UserGroup.objects.get(type=kind, name=name)
    return group


def _onboard_ldap_group(actor: Actor, dn: str) -> UserGroup:
    """An LDAP group named by DN for the first time: looked up in the first
    LDAP provider's directory and made a user group, as Harbor does."""
    from accounts import directory  # it builds on this module
    from accounts.services import providers

    provider = providers.primary_ldap()
    if provider is None:
        raise Invalid("no LDAP user group with that DN, and no LDAP provider to find it in")
    found = directory.search_groups(provider, dn=dn)
    if not found:
        raise Invalid(f"the directory has no group {dn}")
    try:
        with transaction.atomic():
            group = UserGroup.objects.create(
                type=GroupType.LDAP,
                name=found[0]["group_name"] or dn,
                ldap_group_dn=dn,
                provider=provider,
            )
            _audit(actor, Operation.CREATE, group)
    except IntegrityError:
        group = UserGroup.objects.get(type=GroupType.LDAP, ldap_group_dn=dn)
    return group


# What providers say -------------------------------------------------------------


def ldap_groups(provider: IdentityProvider, groups: Iterable[tuple[str, str]]) -> list[UserGroup]:
    """The LDAP groups with these (DN, name), created when new (no actor: the
    directory said so). One query to find, one per new group."""
    wanted = {normalize_dn(dn): name for dn, name in groups}
    found = {
        g.ldap_group_dn: g
        for g in UserGroup.objects.filter(type=GroupType.LDAP, ldap_group_dn__in=list(wanted))
    }
    for dn, name in wanted.items():
        if dn not in found:
            try:
                with transaction.atomic():
                    found[dn] = UserGroup.objects.create(
                        type=GroupType.LDAP,
                        name=name[:255] or dn[:255],
                        ldap_group_dn=dn,
                        provider=provider,
                    )
            except IntegrityError:
                found[dn] = UserGroup.objects.get(type=GroupType.LDAP, ldap_group_dn=dn)
    return list(found.values())


def set_memberships(user: User, groups: Iterable[UserGroup], *, among: QuerySet[UserGroup]) -> None:
    """The user is in exactly ``groups`` of the groups ``among`` (those one
    provider speaks for): memberships it no longer lists go, new ones come."""
    wanted = {g.pk for g in groups}
    rows = GroupMembership.objects.filter(user=user, group__in=among)
    held = set(rows.values_list("group_id", flat=True))
    with transaction.atomic():
        if held - wanted:
            GroupMembership.objects.filter(user=user, group_id__in=held - wanted).delete()
        GroupMembership.objects.bulk_create(
            [GroupMembership(user=user, group_id=gid) for gid in wanted - held],
            ignore_conflicts=True,
        )
