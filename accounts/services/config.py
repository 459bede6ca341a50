"""Runtime settings: the environment gives defaults, a sysadmin may override the
editable ones (stored in SystemSetting; every replica reads the same rows)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.access import Actor
from accounts.errors import Denied, Invalid
from accounts.models import SystemSetting
from audit.events import Operation, Resource
from audit.services import record

PROJECT_CREATION = ("everyone", "adminonly")


def _defaults() -> dict[str, Any]:
    return {
        "self_registration": settings.BERTH_SELF_REGISTRATION,
        "project_creation_restriction": settings.BERTH_PROJECT_CREATION,
    }


EDITABLE = ("self_registration", "project_creation_restriction")


def current() -> dict[str, Any]:
    """Every editable setting's value now (one query)."""
    values = _defaults()
    values.update(dict(SystemSetting.objects.filter(key__in=EDITABLE).values_list("key", "value")))
    return values


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
    raise Invalid(f"{key} is not an editable setting")


def update(*, actor: Actor, values: dict[str, Any]) -> dict[str, Any]:
    if not actor.sysadmin:
        raise Denied("only system administrators change configurations")
    if not isinstance(values, dict) or not values:
        raise Invalid("give the settings to change as an object")
    cleaned = {key: _clean(key, value) for key, value in values.items()}
    with transaction.atomic():
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
