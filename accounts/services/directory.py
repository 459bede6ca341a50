"""Harbor's ``/ldap/*`` operations on the primary LDAP provider (or one named
by id): ping, search users and groups, import users. System administrators
only; an import is audited (one row per user created)."""

from __future__ import annotations

from typing import Any

from accounts.access import Actor, require_system
from accounts.errors import Invalid
from accounts.models import IdentityProvider
from accounts.services import providers
from audit.events import Operation, Resource
from audit.services import record


def _directory() -> Any:
    """accounts/directory.py, imported at first use: python-ldap and
    django-auth-ldap are not loaded in a process that never talks LDAP
    (accounts/backends.py)."""
    from accounts import directory

    return directory


def _provider(actor: Actor, provider_id: int | None) -> IdentityProvider:
    if provider_id is not None:
        provider = providers.provider_get(actor=actor, provider_id=provider_id)
        if provider.kind != IdentityProvider.Kind.LDAP:
            raise Invalid(f"identity provider {provider_id} is not an LDAP directory")
        return provider
    primary = providers.primary_ldap()
    if primary is None:
        raise Invalid("no LDAP identity provider is configured")
    return primary


def search_users(
    *, actor: Actor, username: str = "", provider_id: int | None = None
) -> list[dict[str, str]]:
    require_system(actor, "ldap-user", "list")
    return _directory().search_users(_provider(actor, provider_id), username)


def search_groups(
    *, actor: Actor, name: str = "", dn: str = "", provider_id: int | None = None
) -> list[dict[str, Any]]:
    require_system(actor, "user-group", "list")
    return _directory().search_groups(_provider(actor, provider_id), name=name, dn=dn)


def import_users(
    *, actor: Actor, uids: Any, provider_id: int | None = None
) -> list[dict[str, str]]:
    """Create the users (bound to their entries); what failed, per uid."""
    require_system(actor, "ldap-user", "create")
    if not isinstance(uids, list) or not uids or not all(isinstance(u, str) for u in uids):
        raise Invalid("ldap_uid_list must be a non-empty list of names")
    if len(uids) > _directory().SEARCH_LIMIT:
        raise Invalid(f"import at most {_directory().SEARCH_LIMIT} users at once")
    provider = _provider(actor, provider_id)
    failed = _directory().import_users(provider, uids)
    done = [u for u in uids if u not in {f["uid"] for f in failed}]
    for uid in done:
        record(
            actor=actor,
            operation=Operation.CREATE,
            resource_type=Resource.USER,
            resource=uid,
            detail={"imported_from": provider.name},
        )
    return failed
