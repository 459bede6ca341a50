"""Identity providers: LDAP/AD directories, OpenID Providers and CAS servers
that sysadmins add, order, test ("ping") and disable at run time.

Every change goes through here (the API, the admin, the portal), is the
system administrator's alone (``accounts.access.require_system``) and is
audited in the same transaction. A provider's one secret (an LDAP bind
password, an OIDC client secret) is sealed with ``kit.sealed`` before it is
stored; it is never returned (``secret`` is write-only: ``None`` keeps it,
``""`` clears it) and never logged.

Each kind declares its settings in ``KINDS``: the keys it knows with their
types and defaults, a check of the whole, and how to ping one. A kind's
sign-in is its own module (``accounts/ldap.py`` for LDAP), which reads the
providers through ``enabled``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from importlib import import_module
from typing import Any

from django.db import IntegrityError, transaction

from accounts.access import Actor, require_system
from accounts.errors import Conflict, Invalid, NotFound
from accounts.models import IdentityProvider, PersonalAccessToken, User
from accounts.services.auth import principal_changed, token_changed
from audit.events import Operation, Resource
from audit.services import record
from kit import sealed

Kind = IdentityProvider.Kind
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Settings a kind knows: key → (type, default). Unknown keys are refused;
# absent ones take the default.
Spec = dict[str, tuple[type, Any]]


@dataclass(frozen=True)
class KindInfo:
    spec: Spec
    # Checks the cleaned settings as a whole (raises Invalid).
    check: Callable[[dict[str, Any]], None] = lambda config: None
    # Pings a provider of this kind: (config, secret) → a message; raises
    # Invalid with what went wrong. Set by the kind's module when it loads.
    ping: list[Callable[[dict[str, Any], str], str]] = field(default_factory=list)


LDAP_SPEC: Spec = {
    # Connection.
    "url": (str, ""),  # ldap://host:389 or ldaps://host:636
    "start_tls": (bool, False),
    "verify_cert": (bool, True),
    "ca_cert": (str, ""),  # PEM, for ldaps:// and StartTLS
    "timeout": (int, 5),  # seconds, for connecting and for each operation
    # Searching users: Harbor's ldap_search_dn (the password is the secret).
    "search_dn": (str, ""),
    "base_dn": (str, ""),
    "filter": (str, ""),  # extra filter, e.g. (objectClass=person)
    "uid": (str, "uid"),  # the attribute a user signs in with
    "scope": (int, 2),  # Harbor's: 0 base, 1 one level, 2 subtree
    # The entry's immutable id as the identity's subject ("" = its DN).
    "subject_attribute": (str, ""),
    "email_attribute": (str, "mail"),
    "realname_attribute": (str, "cn"),
    # Groups.
    "group_base_dn": (str, ""),
    "group_filter": (str, ""),
    "group_attribute_name": (str, "cn"),  # the group's name
    "group_search_scope": (int, 2),
    # "member" (groupOfNames, nested resolved) or "memberof" (AD, OpenLDAP's
    # memberof overlay: the user's attribute lists its groups).
    "group_membership_attribute": (str, "member"),
    "nested_groups": (bool, True),
    "group_admin_dn": (str, ""),  # members are system administrators
}


def _check_ldap(config: dict[str, Any]) -> None:
    url = config["url"]
    if not url.startswith(("ldap://", "ldaps://")):
        raise Invalid("url must start with ldap:// or ldaps://")
    if not config["base_dn"]:
        raise Invalid("base_dn is required")
    if config["scope"] not in (0, 1, 2) or config["group_search_scope"] not in (0, 1, 2):
        raise Invalid("scope must be 0 (base), 1 (one level) or 2 (subtree)")
    if not 1 <= config["timeout"] <= 300:
        raise Invalid("timeout must be between 1 and 300 seconds")
    if config["group_membership_attribute"].lower() not in ("member", "memberof"):
        raise Invalid("group_membership_attribute must be member or memberOf")
    for key in ("uid", "group_attribute_name"):
        if not config[key].replace("-", "").isalnum():
            raise Invalid(f"{key} must be an attribute name")


KINDS: dict[str, KindInfo] = {
    Kind.LDAP: KindInfo(LDAP_SPEC, _check_ldap),
    # OIDC and CAS declare their keys when their module is imported (kind_info).
    Kind.OIDC: KindInfo({}),
    Kind.CAS: KindInfo({}),
}


# The module of each kind, which declares its settings and ping when imported.
# They are imported on first use, not at start: python-ldap with django-auth-ldap,
# python-cas with lxml and mozilla-django-oidc cost ~40 MiB in every process,
# most of which never meet a provider (docs/benchmarks.md, idle memory).
KIND_MODULES: dict[str, str] = {
    Kind.LDAP: "accounts.directory",
    Kind.OIDC: "accounts.oidc",
    Kind.CAS: "accounts.cas",
}


def kind_info(kind: str) -> KindInfo | None:
    """What a kind declares (its module imported first); None for no kind."""
    module = KIND_MODULES.get(kind)
    if module is None:
        return None
    import_module(module)  # a dictionary read once imported
    return KINDS[kind]


def register_kind(kind: str, spec: Spec, check: Callable[[dict[str, Any]], None]) -> None:
    """A kind's module declares its settings (OIDC and CAS)."""
    KINDS[kind] = KindInfo(spec, check, KINDS[kind].ping)


def settings_of(provider: IdentityProvider) -> dict[str, Any]:
    """The provider's settings over its kind's defaults (a provider stored
    before a setting existed has its default)."""
    info = kind_info(provider.kind)
    spec = info.spec if info is not None else {}
    return {**{key: default for key, (_, default) in spec.items()}, **provider.config}


def register_ping(kind: str, ping: Callable[[dict[str, Any], str], str]) -> None:
    KINDS[kind].ping[:] = [ping]


def clean_config(kind: str, raw: Any, *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of a provider of ``kind``: ``raw`` over ``base`` (the stored
    ones, for an update) over the defaults, type-checked."""
    info = kind_info(kind)
    if info is None:
        raise Invalid(f"kind must be one of {', '.join(Kind.values)}")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Invalid("config must be an object")
    unknown = sorted(set(raw) - set(info.spec))
    if unknown:
        raise Invalid(f"unknown {kind} setting {unknown[0]}")
    config = {key: default for key, (_, default) in info.spec.items()}
    config.update({k: v for k, v in (base or {}).items() if k in info.spec})
    for key, value in raw.items():
        typ = info.spec[key][0]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(f"{key} must be an integer")
        if typ is bool and not isinstance(value, bool):
            raise Invalid(f"{key} must be true or false")
        if typ is str and not isinstance(value, str):
            raise Invalid(f"{key} must be a string")
        if typ is str and "\x00" in value:
            raise Invalid(f"{key} must not contain NUL")
        config[key] = value.strip() if typ is str and key != "ca_cert" else value
    info.check(config)
    return config


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise Invalid("name: 1-64 letters, digits, '.', '_' or '-', from a letter or digit")
    return value


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{what} must be true or false")
    return value


def _secret(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value or len(value) > 4096:
        raise Invalid("secret must be a string")
    return value


def _audit(actor: Actor, operation: Operation, provider: IdentityProvider, **detail: Any) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.IDENTITY_PROVIDER,
        resource=provider.name,
        detail={"kind": provider.kind, **detail},
    )


def provider_list(*, actor: Actor) -> list[IdentityProvider]:
    require_system(actor, "configuration", "read")
    return list(IdentityProvider.objects.all())


def provider_get(*, actor: Actor, provider_id: int) -> IdentityProvider:
    require_system(actor, "configuration", "read")
    provider = IdentityProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise NotFound(str(provider_id), message=f"identity provider {provider_id} not found")
    return provider


def provider_create(
    *,
    actor: Actor,
    kind: Any,
    name: Any,
    config: Any = None,
    secret: Any = None,
    enabled: Any = True,
    order: Any = None,
    allow_create_users: Any = True,
) -> IdentityProvider:
    require_system(actor, "configuration", "update")
    if kind not in Kind.values:
        raise Invalid(f"kind must be one of {', '.join(Kind.values)}")
    provider = IdentityProvider(
        kind=kind,
        name=_name(name),
        config=clean_config(kind, config),
        enabled=_flag(enabled, "enabled"),
        allow_create_users=_flag(allow_create_users, "allow_create_users"),
    )
    if secret:
        provider.secret_sealed = sealed.seal(_secret(secret))
    if order is None:
        last = IdentityProvider.objects.order_by("-order").values_list("order", flat=True).first()
        provider.order = (last or 0) + 1
    elif isinstance(order, int) and not isinstance(order, bool):
        provider.order = order
    else:
        raise Invalid("order must be an integer")
    try:
        with transaction.atomic():
            provider.save()
            _audit(actor, Operation.CREATE, provider)
    except IntegrityError:
        raise Conflict(f"an identity provider named {provider.name} exists") from None
    return provider


UPDATABLE = ("name", "config", "secret", "enabled", "order", "allow_create_users")


def provider_update(
    *, actor: Actor, provider_id: int, changes: dict[str, Any], replace_config: bool = False
) -> IdentityProvider:
    """Change what ``changes`` names (``UPDATABLE``); ``config`` is merged over
    the stored settings (``replace_config``: replaces them, absent keys taking
    their defaults); ``secret``: None keeps it, "" clears it."""
    require_system(actor, "configuration", "update")
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise Invalid(f"{unknown[0]} cannot be changed")
    provider = provider_get(actor=actor, provider_id=provider_id)
    if "name" in changes:
        provider.name = _name(changes["name"])
    if "config" in changes:
        base = None if replace_config else provider.config
        provider.config = clean_config(provider.kind, changes["config"], base=base)
    if changes.get("secret") is not None:
        value = _secret(changes["secret"])
        provider.secret_sealed = sealed.seal(value) if value else ""
    if "enabled" in changes:
        provider.enabled = _flag(changes["enabled"], "enabled")
    if "allow_create_users" in changes:
        provider.allow_create_users = _flag(changes["allow_create_users"], "allow_create_users")
    if "order" in changes:
        order = changes["order"]
        if not isinstance(order, int) or isinstance(order, bool):
            raise Invalid("order must be an integer")
        provider.order = order
    changed = sorted(k for k in changes if k != "secret" or changes[k] is not None)
    turned_off = "enabled" in changes and not provider.enabled
    try:
        with transaction.atomic():
            provider.save()
            _audit(actor, Operation.UPDATE, provider, changed=changed)
            if turned_off:
                _revoke_tokens(provider)
    except IntegrityError:
        raise Conflict(f"an identity provider named {provider.name} exists") from None
    return provider


def _revoke_tokens(provider: IdentityProvider) -> None:
    """The provider's users' refresh tokens die (their stamp rotates, as when a
    user is disabled; enabling the provider again revives none) and this
    process forgets it trusted them and their access tokens; their sessions and cached passwords end
    with the provider's ``enabled`` (accounts/directory.py)."""
    users = list(User.objects.filter(identities__provider=provider).values_list("pk", "username"))
    User.objects.filter(pk__in=[pk for pk, _ in users]).update(stamp=secrets.token_hex(16))
    for pk, name in users:
        transaction.on_commit(partial(principal_changed, "user", pk, name))
    # Their personal access tokens stop while the provider is disabled
    # (accounts.services.auth.cut_off); registry tokens issued from them too.
    tokens = PersonalAccessToken.objects.filter(user_id__in=[pk for pk, _ in users])
    for token_id in tokens.values_list("pk", flat=True):
        transaction.on_commit(partial(token_changed, token_id))


def provider_delete(*, actor: Actor, provider_id: int) -> None:
    """Delete a provider: its users stay (local accounts without a password
    can then only sign in through another provider or a token); their
    identities at it go."""
    require_system(actor, "configuration", "update")
    provider = provider_get(actor=actor, provider_id=provider_id)
    with transaction.atomic():
        _audit(actor, Operation.DELETE, provider)
        _revoke_tokens(provider)
        provider.delete()


def provider_order(*, actor: Actor, provider_ids: Iterable[Any]) -> list[IdentityProvider]:
    """Put the providers in this order (every provider, each once)."""
    require_system(actor, "configuration", "update")
    ids = list(provider_ids)
    if any(not isinstance(i, int) or isinstance(i, bool) for i in ids):
        raise Invalid("the order is a list of provider ids")
    providers = {p.pk: p for p in IdentityProvider.objects.all()}
    if sorted(ids) != sorted(providers) or len(set(ids)) != len(ids):
        raise Invalid("the order must name every identity provider once")
    with transaction.atomic():
        for position, pid in enumerate(ids, start=1):
            provider = providers[pid]
            if provider.order != position:
                provider.order = position
                provider.save(update_fields=["order", "updated_at"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.IDENTITY_PROVIDER,
            resource="order",
            detail={"order": [providers[pid].name for pid in ids]},
        )
    return [providers[pid] for pid in ids]


def provider_ping(
    *,
    actor: Actor,
    kind: Any = None,
    config: Any = None,
    secret: Any = None,
    provider_id: int | None = None,
) -> str:
    """Test a provider's settings: a stored one (``provider_id``; ``config`` and
    ``secret`` given override its own) or unsaved ones. Returns what the
    provider answered; raises Invalid with why it failed."""
    require_system(actor, "configuration", "update")
    base: dict[str, Any] | None = None
    stored_secret = ""
    if provider_id is not None:
        provider = provider_get(actor=actor, provider_id=provider_id)
        kind, base, stored_secret = provider.kind, provider.config, secret_of(provider)
    if kind not in Kind.values:
        raise Invalid(f"kind must be one of {', '.join(Kind.values)}")
    cleaned = clean_config(kind, config, base=base)
    info = kind_info(kind)
    pings = info.ping if info is not None else []
    if not pings:
        raise Invalid(f"{kind} providers cannot be pinged")
    return pings[0](cleaned, _secret(secret) if secret else stored_secret)


def secret_of(provider: IdentityProvider) -> str:
    """The provider's secret in the clear, for talking to it (never to show)."""
    if not provider.secret_sealed:
        return ""
    try:
        return sealed.unseal(provider.secret_sealed)
    except sealed.SealedError:
        # Sealed under a key no longer configured: as if none were set.
        return ""


def enabled(kind: str) -> list[IdentityProvider]:
    """The enabled providers of a kind, in order (one query)."""
    return list(IdentityProvider.objects.filter(kind=kind, enabled=True))


def any_enabled(kind: str) -> bool:
    """Is a provider of this kind enabled (one query)? Asked before loading a
    kind's client library at all (accounts/backends.py, the directory refresh)."""
    return IdentityProvider.objects.filter(kind=kind, enabled=True).exists()


# Harbor's single-source view (/configurations, /systeminfo) ---------------------

# Harbor's ldap_* configuration keys → the primary LDAP provider's settings.
HARBOR_LDAP_KEYS = {
    "ldap_url": "url",
    "ldap_search_dn": "search_dn",
    "ldap_base_dn": "base_dn",
    "ldap_filter": "filter",
    "ldap_uid": "uid",
    "ldap_scope": "scope",
    "ldap_timeout": "timeout",
    "ldap_verify_cert": "verify_cert",
    "ldap_group_base_dn": "group_base_dn",
    "ldap_group_search_filter": "group_filter",
    "ldap_group_attribute_name": "group_attribute_name",
    "ldap_group_search_scope": "group_search_scope",
    "ldap_group_admin_dn": "group_admin_dn",
    "ldap_group_membership_attribute": "group_membership_attribute",
}
HARBOR_LDAP_SECRET = "ldap_search_password"  # noqa: S105 - the key's name
AUTH_MODES: dict[str, str] = {Kind.LDAP: "ldap_auth", Kind.OIDC: "oidc_auth"}


def primary_ldap() -> IdentityProvider | None:
    """The LDAP provider Harbor's single-source API speaks for: the first LDAP
    provider by order, enabled or not."""
    return IdentityProvider.objects.filter(kind=Kind.LDAP).first()


def auth_mode() -> str:
    """Harbor's ``auth_mode``: the first enabled provider's kind
    (``ldap_auth``, ``oidc_auth``), else ``db_auth`` (one query). Local users
    sign in whatever it says."""
    first = IdentityProvider.objects.filter(enabled=True).values_list("kind", flat=True).first()
    return AUTH_MODES.get(first or "", "db_auth")


def harbor_ldap_view() -> dict[str, Any]:
    """The ldap_* keys' values (never the password)."""
    provider = primary_ldap()
    config = clean_config(Kind.LDAP, {}, base=provider.config) if provider else {}
    empty: dict[type, Any] = {bool: False, int: 0, str: ""}
    return {
        key: config.get(name, empty[LDAP_SPEC[name][0]]) for key, name in HARBOR_LDAP_KEYS.items()
    }


def harbor_ldap_update(*, actor: Actor, values: dict[str, Any]) -> None:
    """Harbor's ``PUT /configurations`` with ldap_* keys and ``auth_mode``: the
    primary LDAP provider takes them (made, named ``ldap``, when there is
    none); ``auth_mode`` ``ldap_auth`` enables it, ``db_auth`` disables it."""
    require_system(actor, "configuration", "update")
    mode = values.get("auth_mode")
    if mode is not None and mode not in ("db_auth", "ldap_auth"):
        raise Invalid("auth_mode must be db_auth or ldap_auth here (OIDC: its own keys)")
    config = {HARBOR_LDAP_KEYS[k]: v for k, v in values.items() if k in HARBOR_LDAP_KEYS}
    changes: dict[str, Any] = {}
    if config:
        changes["config"] = config
    if values.get(HARBOR_LDAP_SECRET):
        changes["secret"] = values[HARBOR_LDAP_SECRET]
    if mode is not None:
        changes["enabled"] = mode == "ldap_auth"
    if not changes:
        return
    provider = primary_ldap()
    if provider is None:
        if not changes.get("enabled") and not config.get("url"):
            # No directory named (a client sending Harbor's whole
            # configuration back, its LDAP keys empty): nothing to store.
            return
        provider_create(
            actor=actor,
            kind=Kind.LDAP,
            name="ldap",
            config=changes.get("config"),
            secret=changes.get("secret"),
            enabled=bool(changes.get("enabled", False)),
        )
        return
    provider_update(actor=actor, provider_id=provider.pk, changes=changes)
