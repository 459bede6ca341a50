"""LDAP/AD sign-in: one more ``AUTHENTICATION_BACKENDS`` backend (the identity
seam, ``accounts/identity.py``), so the portal, the admin, the token service,
``/v2`` and the API accept a directory user's password with nothing changed
there.

``authenticate`` (behind ``accounts.backends.LDAPProvidersBackend``) tries each
enabled LDAP ``IdentityProvider`` in order with django-auth-ldap, configured at
run time from the provider's row (no settings, no restart): bind as the search
DN, search the user (the name escaped by django-auth-ldap, so ``*)(uid=*`` is a
literal), bind as the entry with the password, then read its groups (``member`` with nested groups
resolved, or the entry's ``memberOf``).

- The entry is bound to a Berth user by ``ExternalIdentity`` (provider,
  subject): the subject is the entry's DN or its immutable id
  (``subject_attribute``, e.g. ``entryUUID``/``objectGUID``). A new entry whose
  user name a Berth user already has is refused with a clear message (never
  merged by name); otherwise it creates the user when the provider allows.
- Its groups become LDAP ``UserGroup`` rows and memberships (groups are project
  members, ``accounts.access``); the provider's admin group makes the user a
  system administrator (and leaving it takes that away at the next sign-in).
- Every connection has the provider's network and operation timeouts: an
  unreachable or silent server costs at most that, then the next provider
  (and local users, tried first) still work.
- A verified directory password is cached for ``BERTH_LDAP_CREDENTIAL_TTL``
  seconds (keyed digests only, as the local backend's): a ``docker pull`` then
  costs what a local user's does. Every use re-checks the user row, the
  identity and that the provider is still enabled (one query); any failed
  sign-in under that name revokes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import ldap
import ldap.filter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django_auth_ldap.backend import LDAPBackend
from django_auth_ldap.config import (
    LDAPGroupType,
    LDAPSearch,
    LDAPSettings,
    MemberDNGroupType,
    NestedMemberDNGroupType,
)

from accounts.errors import Invalid
from accounts.models import ExternalIdentity, IdentityProvider, User, UserGroup
from accounts.services import groups as group_service
from accounts.services import providers
from accounts.services.auth import _call, _digest
from kit import outbound

log = logging.getLogger("berth.ldap")

SCOPES = {0: ldap.SCOPE_BASE, 1: ldap.SCOPE_ONELEVEL, 2: ldap.SCOPE_SUBTREE}


class NameTaken(Exception):
    """A directory entry signs in for the first time with a name a Berth user
    already has: refused, never merged by name."""


class MemberOfGroupType(LDAPGroupType):
    """Groups listed in the user entry's ``memberOf`` (Active Directory,
    OpenLDAP's memberof overlay), within the group search base."""

    def user_groups(self, ldap_user: Any, group_search: Any) -> list[tuple[str, dict[str, Any]]]:
        base = group_service.normalize_dn(group_search.base_dn)
        out = []
        for dn in (ldap_user.attrs or {}).get("memberof", []):
            normalized = group_service.normalize_dn(dn)
            if base and not (normalized == base or normalized.endswith("," + base)):
                continue
            rdn = ldap.dn.str2dn(dn)[0][0]
            out.append((dn, {self.name_attr: [rdn[1]]}))
        return out

    def is_member(self, ldap_user: Any, group_dn: str) -> bool:
        listed = (ldap_user.attrs or {}).get("memberof", [])
        wanted = group_service.normalize_dn(group_dn)
        return any(group_service.normalize_dn(dn) == wanted for dn in listed)


def _ca_file(pem: str) -> str:
    """A file holding the CA certificate (libldap reads files), named by its
    digest, in the data directory (not a shared /tmp another local user could
    have prepared)."""
    folder = os.path.join(settings.DATA_DIR, "ldap-ca")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, hashlib.sha256(pem.encode()).hexdigest() + ".pem")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        os.replace(tmp, path)
    return path


def check_url(url: str) -> None:
    """The outbound address policy (``kit.outbound``: BERTH_OUTBOUND_ALLOW and
    _DENY, by default no link-local/metadata address) for a directory's URL:
    every address its host resolves to must be allowed. Raises Invalid.
    (libldap resolves the name again when it connects: a name an attacker's
    DNS answers differently a moment later is not caught here, as it is for
    HTTP; directory URLs are set by system administrators.)"""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (636 if parts.scheme == "ldaps" else 389)
    except ValueError as exc:
        raise Invalid(f"not a usable LDAP URL: {exc}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Invalid(f"cannot resolve the directory's host {host}: {exc}") from None
    for info in infos:
        try:
            outbound.check_address(str(info[4][0]))
        except outbound.Refused as exc:
            raise Invalid(str(exc)) from None


def connection_options(config: dict[str, Any]) -> dict[int, Any]:
    timeout = config["timeout"]
    options: dict[int, Any] = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_PROTOCOL_VERSION: 3,
    }
    if config["url"].startswith("ldaps://") or config["start_tls"]:
        if not config["verify_cert"]:
            options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_NEVER
        else:
            options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
            if config["ca_cert"]:
                options[ldap.OPT_X_TLS_CACERTFILE] = _ca_file(config["ca_cert"])
        options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: applies the TLS options above
    return options


def _group_type(config: dict[str, Any]) -> LDAPGroupType:
    name = config["group_attribute_name"]
    if config["group_membership_attribute"].lower() == "memberof":
        return MemberOfGroupType(name_attr=name)
    if config["nested_groups"]:
        return NestedMemberDNGroupType("member", name_attr=name)
    return MemberDNGroupType("member", name_attr=name)


def ldap_settings(provider: IdentityProvider) -> LDAPSettings:
    """django-auth-ldap's settings for one provider (prefix unused: every value
    is given)."""
    config = providers.clean_config(IdentityProvider.Kind.LDAP, {}, base=provider.config)
    extra = config["filter"]
    if extra and not extra.startswith("("):
        extra = f"({extra})"
    user_filter = f"(&{extra}({config['uid']}=%(user)s))"
    attrs = ["*", "+"]
    defaults: dict[str, Any] = {
        "SERVER_URI": config["url"],
        "START_TLS": config["start_tls"] and config["url"].startswith("ldap://"),
        "CONNECTION_OPTIONS": connection_options(config),
        "BIND_DN": config["search_dn"],
        "BIND_PASSWORD": providers.secret_of(provider),
        "USER_SEARCH": LDAPSearch(
            config["base_dn"], SCOPES[config["scope"]], user_filter, attrlist=attrs
        ),
        "USER_ATTRLIST": attrs,
        "USER_ATTR_MAP": {
            k: v
            for k, v in (
                ("email", config["email_attribute"]),
                ("realname", config["realname_attribute"]),
            )
            if v
        },
        "GROUP_SEARCH": LDAPSearch(
            config["group_base_dn"] or config["base_dn"],
            SCOPES[config["group_search_scope"]],
            config["group_filter"] or "(objectClass=*)",
        ),
        "GROUP_TYPE": _group_type(config),
        "USER_FLAGS_BY_GROUP": (
            {"is_superuser": config["group_admin_dn"], "is_staff": config["group_admin_dn"]}
            if config["group_admin_dn"]
            else {}
        ),
        "ALWAYS_UPDATE_USER": True,
        "CACHE_TIMEOUT": 0,
        "NO_NEW_USERS": not provider.allow_create_users,
        "MIRROR_GROUPS": None,
        "FIND_GROUP_PERMS": False,
    }
    return LDAPSettings("BERTH_LDAP_PROVIDER_UNUSED_", defaults)


def _first(attrs: Any, name: str) -> str:
    values = (attrs or {}).get(name) or []
    value = values[0] if values else ""
    return value.decode() if isinstance(value, bytes) else str(value)


class ProviderBackend(LDAPBackend):
    """django-auth-ldap for one provider: its settings, and users bound by
    (provider, subject)."""

    def __init__(self, provider: IdentityProvider) -> None:
        self.provider = provider
        self.config = providers.clean_config(IdentityProvider.Kind.LDAP, {}, base=provider.config)
        self.settings = ldap_settings(provider)

    def subject(self, ldap_user: Any) -> str:
        attribute = self.config["subject_attribute"]
        if not attribute:
            return group_service.normalize_dn(ldap_user.dn)
        value = _first(ldap_user.attrs, attribute)
        if not value:
            raise ldap_user.AuthenticationFailed(f"the entry has no {attribute}")
        return value

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[User, bool]:
        subject = self.subject(ldap_user)
        identity = (
            ExternalIdentity.objects.filter(provider=self.provider, subject=subject)
            .select_related("user")
            .first()
        )
        if identity is not None:
            return identity.user, False
        # The directory's spelling of the name, not what was typed.
        name = _first(ldap_user.attrs, self.config["uid"]) or username
        if User.objects.filter(username__iexact=name).exists():
            raise NameTaken(
                f"a Berth user named {name} already exists: an administrator must link "
                f"the directory account to it (or rename one of them) before it can sign in"
            )
        return User(username=name), True


def _bound(backend: ProviderBackend, user: User) -> None:
    """After a successful bind: the identity, its details and the groups."""
    ldap_user = user.ldap_user  # type: ignore[attr-defined]
    subject = backend.subject(ldap_user)
    details = {"dn": ldap_user.dn}
    group_infos = backend.settings.GROUP_TYPE.user_groups(ldap_user, backend.settings.GROUP_SEARCH)
    pairs = [
        (dn, backend.settings.GROUP_TYPE.group_name_from_info((dn, attrs)) or "")
        for dn, attrs in group_infos
    ]
    with transaction.atomic():
        # (IntegrityError: the same entry's first two sign-ins at once.)
        with contextlib.suppress(IntegrityError), transaction.atomic():
            ExternalIdentity.objects.update_or_create(
                provider=backend.provider,
                subject=subject,
                defaults={"user": user, "details": details, "last_seen_at": timezone.now()},
            )
        sync_groups(backend.provider, user, pairs)


def sync_groups(provider: IdentityProvider, user: User, pairs: list[tuple[str, str]]) -> None:
    """The user is in exactly these LDAP groups (DN, name) of the provider."""
    among = UserGroup.objects.filter(type=UserGroup.Type.LDAP).filter(
        Q(provider=provider) | Q(provider__isnull=True)
    )
    group_service.set_memberships(user, group_service.ldap_groups(provider, pairs), among=among)


# The verified-password cache ---------------------------------------------------


def _generation_key(username: str) -> str:
    return "ldapgen:" + _digest("ldap", username.strip().lower())


def _revoke(username: str) -> None:
    _call("set", _generation_key(username), secrets.token_hex(8), 24 * 3600)


def _cached(username: str, password: str) -> User | None:
    key = "ldapcred:" + _digest(username.strip().lower(), password)
    cached = _call("get", key)
    if cached is None:
        return None
    user_id, provider_id, generation = cached
    if generation != _call("get", _generation_key(username)):
        _call("delete", key)
        return None
    user = User.objects.filter(
        pk=user_id,
        is_active=True,
        identities__provider_id=provider_id,
        identities__provider__enabled=True,
    ).first()
    if user is None:
        _call("delete", key)
    return user


def _remember(username: str, password: str, user: User, provider: IdentityProvider) -> None:
    ttl = settings.BERTH_LDAP_CREDENTIAL_TTL
    if ttl <= 0:
        return
    generation = _call("get", _generation_key(username))
    key = "ldapcred:" + _digest(username.strip().lower(), password)
    _call("set", key, (user.pk, provider.pk, generation), ttl)


def authenticate(request: HttpRequest | None, username: str, password: str) -> User | None:
    """Sign-in through each enabled LDAP provider in order (the backend,
    ``accounts.backends.LDAPProvidersBackend``, calls this once one is enabled)."""
    if not username or not password:
        return None
    user = _cached(username, password)
    if user is not None:
        return user
    for provider in providers.enabled(IdentityProvider.Kind.LDAP):
        try:
            check_url(provider.config.get("url", ""))
        except Invalid as exc:
            log.warning("LDAP provider %s skipped: %s", provider.name, exc)
            continue
        backend = ProviderBackend(provider)
        try:
            user = backend.authenticate(request, username=username, password=password)
        except NameTaken as exc:
            log.warning("LDAP sign-in refused at %s: %s", provider.name, exc)
            if request is not None:
                request.berth_refusal = str(exc)  # type: ignore[attr-defined]
            continue
        if user is None:
            continue
        if not user.is_active:
            return None
        _bound(backend, user)
        _remember(username, password, user, provider)
        return user
    _revoke(username)
    return None


# Searching and pinging ------------------------------------------------------------


@contextmanager
def connected(config: dict[str, Any], secret: str) -> Iterator[Any]:
    """A connection bound as the search DN (anonymous without one), closed
    afterwards (and on failure). Raises Invalid saying what failed."""
    check_url(config["url"])
    try:
        conn = ldap.initialize(config["url"], bytes_mode=False)
    except ldap.LDAPError as exc:
        raise Invalid(f"not a usable LDAP URL: {_reason(exc)}") from None
    try:
        try:
            for option, value in connection_options(config).items():
                conn.set_option(option, value)
            if config["start_tls"] and config["url"].startswith("ldap://"):
                conn.start_tls_s()
            conn.simple_bind_s(config["search_dn"], secret)
        except ldap.INVALID_CREDENTIALS:
            raise Invalid("the directory refused the search DN and password") from None
        except ldap.TIMEOUT:
            raise Invalid(f"the directory did not answer within {config['timeout']} s") from None
        except ldap.SERVER_DOWN as exc:
            raise Invalid(f"cannot reach the directory: {_reason(exc)}") from None
        except ldap.LDAPError as exc:
            raise Invalid(f"the directory refused: {_reason(exc)}") from None
        yield conn
    finally:
        with contextlib.suppress(ldap.LDAPError):
            conn.unbind_s()


def _reason(exc: ldap.LDAPError) -> str:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    text = info.get("desc", "") or type(exc).__name__
    if info.get("info"):
        text += f" ({info['info']})"
    return str(text)


def ping(config: dict[str, Any], secret: str) -> str:
    """Bind as the search DN and read the base DN."""
    with connected(config, secret) as conn:
        try:
            conn.search_s(config["base_dn"], ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            raise Invalid(f"the base DN {config['base_dn']} does not exist") from None
        except ldap.LDAPError as exc:
            raise Invalid(f"the directory refused the search: {_reason(exc)}") from None
    return "ok"


providers.register_ping(IdentityProvider.Kind.LDAP, ping)


# Searching and importing (Harbor's /ldap/*) ----------------------------------------


def _search(conn: Any, base: str, scope: int, query: str, attrs: list[str]) -> list[Any]:
    try:
        results = conn.search_ext_s(base, scope, query, attrs, sizelimit=SEARCH_LIMIT)
    except ldap.SIZELIMIT_EXCEEDED:
        raise Invalid(f"more than {SEARCH_LIMIT} entries match: narrow the search") from None
    except ldap.NO_SUCH_OBJECT:
        return []
    except ldap.LDAPError as exc:
        raise Invalid(f"the directory refused the search: {_reason(exc)}") from None
    return [(dn, attrs) for dn, attrs in results if dn]


SEARCH_LIMIT = 500


def _user_filter(config: dict[str, Any], name: str) -> str:
    extra = config["filter"]
    if extra and not extra.startswith("("):
        extra = f"({extra})"
    value = ldap.filter.escape_filter_chars(name) if name else "*"
    return f"(&{extra}({config['uid']}={value}))"


def _text(attrs: Any, name: str) -> str:
    values = attrs.get(name) or [b""]
    value = values[0]
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def search_users(provider: IdentityProvider, username: str = "") -> list[dict[str, str]]:
    """Harbor's LdapUser for the entries whose uid is ``username`` (every
    entry when empty)."""
    config = providers.clean_config(IdentityProvider.Kind.LDAP, {}, base=provider.config)
    attrs = [config["uid"], config["email_attribute"], config["realname_attribute"]]
    with connected(config, providers.secret_of(provider)) as conn:
        found = _search(
            conn, config["base_dn"], SCOPES[config["scope"]], _user_filter(config, username), attrs
        )
    return [
        {
            "username": _text(a, config["uid"]),
            "realname": _text(a, config["realname_attribute"]),
            "email": _text(a, config["email_attribute"]),
            "dn": dn,
        }
        for dn, a in found
    ]


def search_groups(
    provider: IdentityProvider, *, name: str = "", dn: str = ""
) -> list[dict[str, Any]]:
    """Harbor's UserGroup for directory groups: by name, or the one at ``dn``."""
    config = providers.clean_config(IdentityProvider.Kind.LDAP, {}, base=provider.config)
    name_attr = config["group_attribute_name"]
    extra = config["group_filter"] or "(objectClass=*)"
    if not extra.startswith("("):
        extra = f"({extra})"
    with connected(config, providers.secret_of(provider)) as conn:
        if dn:
            found = _search(conn, dn, ldap.SCOPE_BASE, extra, [name_attr])
        else:
            value = ldap.filter.escape_filter_chars(name) if name else "*"
            found = _search(
                conn,
                config["group_base_dn"] or config["base_dn"],
                SCOPES[config["group_search_scope"]],
                f"(&{extra}({name_attr}={value}))",
                [name_attr],
            )
    return [
        {"group_name": _text(a, name_attr), "group_type": 1, "ldap_group_dn": entry_dn}
        for entry_dn, a in found
    ]


def import_users(provider: IdentityProvider, uids: list[str]) -> list[dict[str, str]]:
    """Create Berth users for these directory entries (bound to them by
    (provider, subject), without a password): what failed, Harbor's
    LdapFailedImportUser."""
    config = providers.clean_config(IdentityProvider.Kind.LDAP, {}, base=provider.config)
    failed = []
    attrs = ["*", "+"]
    with connected(config, providers.secret_of(provider)) as conn:
        for uid in uids:
            found = _search(
                conn, config["base_dn"], SCOPES[config["scope"]], _user_filter(config, uid), attrs
            )
            if len(found) != 1 or not uid:
                failed.append({"uid": uid, "error": "not found"})
                continue
            dn, entry = found[0]
            attribute = config["subject_attribute"]
            subject = _text(entry, attribute) if attribute else group_service.normalize_dn(dn)
            if ExternalIdentity.objects.filter(provider=provider, subject=subject).exists():
                failed.append({"uid": uid, "error": "already imported"})
                continue
            name = _text(entry, config["uid"])
            if User.objects.filter(username__iexact=name).exists():
                failed.append({"uid": uid, "error": "a user of that name exists"})
                continue
            with transaction.atomic():
                user = User(
                    username=name,
                    email=_text(entry, config["email_attribute"]),
                    realname=_text(entry, config["realname_attribute"]),
                )
                user.set_unusable_password()
                user.save()
                ExternalIdentity.objects.create(
                    provider=provider, subject=subject, user=user, details={"dn": dn}
                )
    return failed


# The refresh job ---------------------------------------------------------------------


def refresh(provider: IdentityProvider) -> dict[str, int]:
    """Read every user bound to the provider again: their attributes, groups
    and the admin flag; a user whose entry is gone loses the provider's groups
    (and sysadmin, when the provider grants it). New entries are not created
    here (their first sign-in or an import does). Counts what it did."""
    backend = ProviderBackend(provider)
    counts = {"refreshed": 0, "gone": 0, "failed": 0}
    identities = ExternalIdentity.objects.filter(provider=provider).select_related("user")
    for identity in identities.iterator():
        user = identity.user
        try:
            found = backend.populate_user(user.username)
        except NameTaken:
            found = None
        except ldap.LDAPError as exc:
            log.warning("LDAP refresh of %s at %s failed: %s", user.username, provider.name, exc)
            counts["failed"] += 1
            continue
        if found is not None and found.pk == user.pk:
            _bound(backend, found)
            counts["refreshed"] += 1
            continue
        with transaction.atomic():
            sync_groups(provider, user, [])
            if backend.config["group_admin_dn"] and user.is_superuser:
                User.objects.filter(pk=user.pk).update(is_superuser=False, is_staff=False)
        counts["gone"] += 1
    return counts


def refresh_all() -> dict[str, dict[str, int]]:
    """Refresh every enabled LDAP provider's users (one provider failing does
    not stop the others)."""
    done = {}
    for provider in providers.enabled(IdentityProvider.Kind.LDAP):
        try:
            done[provider.name] = refresh(provider)
        except (ldap.LDAPError, Invalid) as exc:
            log.warning("LDAP refresh of %s failed: %s", provider.name, exc)
    return done
