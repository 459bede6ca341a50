"""Runtime settings: the environment gives defaults, a sysadmin may override the
editable ones (stored in SystemSetting; every replica reads the same rows).

Harbor's configuration API has many more keys (its swagger's
``Configurations``). Berth answers all of them, so Harbor's clients find every
field, and accepts all of them in an update: the EDITABLE ones are stored and
honoured, the others (LDAP, OIDC, UAA, auth proxy, banner, token and session
lifetimes…) are checked for their type and ignored until Berth has the feature
behind them (docs/configuration.md lists them)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.access import Actor
from accounts.errors import Denied, Invalid
from accounts.models import SystemSetting
from accounts.services import providers
from audit.events import Operation, Resource
from audit.services import record

log = logging.getLogger("berth.config")

PROJECT_CREATION = ("everyone", "adminonly")

# Harbor's keys by type (harbor-api-v2.0.swagger.yaml: Configurations and
# ConfigurationsResponse).
HARBOR_BOOL = (
    "http_authproxy_skip_search",
    "http_authproxy_verify_cert",
    "ldap_group_attach_parallel",
    "ldap_verify_cert",
    "notification_enable",
    "oidc_auto_onboard",
    "oidc_logout",
    "oidc_verify_cert",
    "primary_auth_mode",
    "quota_per_project_enable",
    "read_only",
    "scanner_skip_update_pulltime",
    "self_registration",
    "skip_audit_log_database",
    "uaa_verify_cert",
)
HARBOR_INT = (
    "ldap_group_search_scope",
    "ldap_scope",
    "ldap_timeout",
    "robot_token_duration",
    "session_timeout",
    "storage_per_project",
    "token_expiration",
)
HARBOR_STR = (
    "audit_log_forward_endpoint",
    "auth_mode",
    "banner_message",
    "disabled_audit_log_event_types",
    "http_authproxy_admin_groups",
    "http_authproxy_admin_usernames",
    "http_authproxy_endpoint",
    "http_authproxy_server_certificate",
    "http_authproxy_tokenreview_endpoint",
    "ldap_base_dn",
    "ldap_filter",
    "ldap_group_admin_dn",
    "ldap_group_attribute_name",
    "ldap_group_base_dn",
    "ldap_group_membership_attribute",
    "ldap_group_search_filter",
    "ldap_search_dn",
    "ldap_uid",
    "ldap_url",
    "oidc_admin_group",
    "oidc_client_id",
    "oidc_endpoint",
    "oidc_extra_redirect_parms",
    "oidc_group_filter",
    "oidc_groups_claim",
    "oidc_name",
    "oidc_scope",
    "oidc_user_claim",
    "project_creation_restriction",
    "robot_name_prefix",
    "uaa_client_id",
    "uaa_client_secret",
    "uaa_endpoint",
)
# Accepted in an update, never shown (Harbor's are write-only too).
HARBOR_WRITE_ONLY = ("ldap_search_password", "oidc_client_secret")
HARBOR_TYPES: dict[str, type] = {
    **dict.fromkeys(HARBOR_BOOL, bool),
    **dict.fromkeys(HARBOR_INT, int),
    **dict.fromkeys((*HARBOR_STR, *HARBOR_WRITE_ONLY), str),
}


def _defaults() -> dict[str, Any]:
    return {
        "self_registration": settings.BERTH_SELF_REGISTRATION,
        "project_creation_restriction": settings.BERTH_PROJECT_CREATION,
        "storage_per_project": settings.BERTH_STORAGE_PER_PROJECT,
    }


EDITABLE = ("self_registration", "project_creation_restriction", "storage_per_project")
# Harbor's LDAP keys and auth_mode: the primary LDAP identity provider's
# (accounts/services/providers.py), stored there.
LDAP_EDITABLE = (
    "auth_mode",
    *providers.HARBOR_LDAP_KEYS,
    providers.HARBOR_LDAP_SECRET,
)


def current() -> dict[str, Any]:
    """Every editable setting's value now (one query)."""
    values = _defaults()
    values.update(dict(SystemSetting.objects.filter(key__in=EDITABLE).values_list("key", "value")))
    return values


def harbor_view() -> dict[str, dict[str, Any]]:
    """Every key of Harbor's ``GET /configurations`` as ``{"value", "editable"}``:
    Berth's values where it has them, Harbor's empty value of the type where it
    does not (the feature is not there; the key is not editable)."""
    from accounts import oidc  # mozilla-django-oidc: loaded at first use

    empty: dict[type, Any] = {bool: False, int: 0, str: ""}
    fixed = {
        "auth_mode": providers.auth_mode(),
        **providers.harbor_ldap_view(),
        **oidc.harbor_view(),
        "token_expiration": settings.BERTH_TOKEN_TTL // 60,
        "robot_token_duration": -1,
        "robot_name_prefix": "robot$",
        **current(),
    }
    editable = (*EDITABLE, *LDAP_EDITABLE, *oidc.HARBOR_EDITABLE)
    view = {
        key: {"value": fixed.get(key, empty[kind]), "editable": key in editable}
        for key, kind in HARBOR_TYPES.items()
        if key not in HARBOR_WRITE_ONLY
    }
    view["scan_all_policy"] = {"value": {"type": "none", "parameter": {"daily_time": 0}}}
    return view


def get(key: str) -> Any:
    row = SystemSetting.objects.filter(key=key).values_list("value", flat=True).first()
    return _defaults()[key] if row is None else row


def _clean(key: str, value: Any) -> Any:
    if key == "self_registration":
        if not isinstance(value, bool):
            raise Invalid("self_registration must be true or false")
        return value
    if key == "project_creation_restriction":
        if value not in PROJECT_CREATION:
            raise Invalid("project_creation_restriction must be everyone or adminonly")
        return value
    if key == "storage_per_project":
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("storage_per_project must be a number of bytes or -1")
        if value == 0 or value < -1 or value >= 2**63:
            raise Invalid("storage_per_project must be -1 (unlimited) or a positive byte count")
        return value
    raise Invalid(f"{key} is not an editable setting")


def _tolerated(key: str, value: Any) -> None:
    """A Harbor key Berth does not honour: refused only if unknown or of the
    wrong type, so a client sending Harbor's whole configuration back works."""
    kind = HARBOR_TYPES.get(key)
    if kind is None:
        raise Invalid(f"{key} is not a configuration setting")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"{key} must be a {kind.__name__}")


def update(*, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    """Store the EDITABLE settings given; accept and ignore Harbor's others."""
    from accounts import oidc  # mozilla-django-oidc: loaded at first use

    if not actor.sysadmin:
        raise Denied("only system administrators change configurations")
    if not isinstance(values, dict) or not values:
        raise Invalid("give the settings to change as an object")
    cleaned = {key: _clean(key, value) for key, value in values.items() if key in EDITABLE}
    # auth_mode oidc_auth goes with the oidc_* keys, any other with the LDAP ones.
    to_oidc = values.get("auth_mode") == "oidc_auth"
    oidc_values = {
        key: value
        for key, value in values.items()
        if key in oidc.HARBOR_EDITABLE or key == "auth_mode"
    }
    ldap = {
        key: value
        for key, value in values.items()
        if key in LDAP_EDITABLE and not (key == "auth_mode" and to_oidc)
    }
    for key, value in (*ldap.items(), *oidc_values.items()):
        _tolerated(key, value)
    ignored = sorted(set(values) - set(cleaned) - set(ldap) - set(oidc_values))
    if set(oidc_values) == {"auth_mode"} and not to_oidc:
        # Only db_auth/ldap_auth: the OIDC provider is disabled by db_auth alone.
        oidc_values = oidc_values if values["auth_mode"] == "db_auth" else {}
    for key in ignored:
        _tolerated(key, values[key])
    if ignored:
        log.info("configuration keys accepted but not used by Berth: %s", ", ".join(ignored))
    if not cleaned and not ldap and not oidc_values:
        return current()
    with transaction.atomic():
        if ldap:
            providers.harbor_ldap_update(actor=actor, values=ldap)
        if oidc_values:
            oidc.harbor_update(actor=actor, values=oidc_values)
        if not cleaned:
            return current()
        for key, value in cleaned.items():
            SystemSetting.objects.update_or_create(key=key, defaults={"value": value})
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.CONFIGURATION,
            resource=",".join(sorted(cleaned)),
            detail=cleaned,
        )
    return current()
