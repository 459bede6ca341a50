"""Replication policies: create, change, delete. A push policy has the local
Berth as its source (no ``src_endpoint``), a pull policy as its destination."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.access import Actor, require_system
from audit.events import Operation as AuditOperation
from audit.events import Resource
from audit.services import record
from kit.cron import parse as parse_cron
from kit.errors import Conflict, Invalid, NotFound, PreconditionFailed
from replication import filters as policy_filters
from replication.models import FINAL, Endpoint, Policy, Trigger

SIMPLE = (
    "description",
    "dest_namespace",
    "replicate_deletion",
    "override",
    "enabled",
    "copy_by_chunk",
    "single_active",
)


def _endpoint(value: Any) -> Endpoint | None:
    if value in (None, 0, "", "0"):
        return None
    try:
        return Endpoint.objects.get(pk=int(value))
    except (Endpoint.DoesNotExist, ValueError, TypeError):
        raise Invalid(f"registry {value} does not exist") from None


def check_cron(cron: str) -> str:
    """Harbor's cron: six fields, seconds first ("0 0 * * * *"); any seconds
    field (replication's tick may run more often than every minute)."""
    cron = cron.strip()
    parse_cron(cron, any_second=True)
    return cron


def _apply(policy: Policy, data: dict[str, Any]) -> None:
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name or len(name) > 255:
            raise Invalid("name is required (at most 255 characters)")
        policy.name = name
    if "src_endpoint" in data:
        policy.src_endpoint = _endpoint(data["src_endpoint"])
    if "dest_endpoint" in data:
        policy.dest_endpoint = _endpoint(data["dest_endpoint"])
    for key in SIMPLE:
        if key in data and data[key] is not None:
            setattr(policy, key, data[key])
    if "dest_namespace_replace_count" in data and data["dest_namespace_replace_count"] is not None:
        count = int(data["dest_namespace_replace_count"])
        if count < -1:
            raise Invalid("dest_namespace_replace_count must be -1 or more")
        policy.dest_namespace_replace_count = count
    if "speed_kb" in data and data["speed_kb"] is not None:
        policy.speed_kb = int(data["speed_kb"])
    if "filters" in data:
        policy.filters = [f.as_json() for f in policy_filters.parse(data["filters"])]
    if "trigger" in data:
        if data["trigger"] not in Trigger.values:
            raise Invalid("trigger must be manual, scheduled or event_based")
        policy.trigger = data["trigger"]
    if "cron" in data:
        policy.cron = str(data["cron"] or "")
        if len(policy.cron) > 100:
            raise Invalid("cron is longer than 100 characters")
    if len(policy.dest_namespace) > 255:
        raise Invalid("dest_namespace is longer than 255 characters")
    if policy.trigger == Trigger.SCHEDULED:
        policy.cron = check_cron(policy.cron)
    if (policy.src_endpoint_id is None) == (policy.dest_endpoint_id is None):
        raise Invalid(
            "a policy pulls from a registry or pushes to one: "
            "exactly one of src_registry and dest_registry"
        )
    if policy.trigger == Trigger.EVENT_BASED and not policy.is_push:
        raise Invalid("an event-based trigger is for push policies (events are this Berth's)")


def _record(actor: Actor, operation: AuditOperation, policy: Policy) -> None:
    """In the change's transaction (a policy holds no secret: its endpoints do)."""
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.REPLICATION_POLICY,
        resource=policy.name,
        detail={
            "id": policy.pk,
            "direction": "push" if policy.is_push else "pull",
            "registry_id": policy.dest_endpoint_id or policy.src_endpoint_id,
            "trigger": policy.trigger,
            "enabled": policy.enabled,
        },
    )


def policy_create(*, actor: Actor, data: dict[str, Any]) -> Policy:
    require_system(actor, "replication-policy", "create")
    policy = Policy(creator=actor.name)
    _apply(policy, data)
    try:
        with transaction.atomic():
            policy.save()
            _record(actor, AuditOperation.CREATE, policy)
    except IntegrityError:
        raise Conflict(f"a policy named {policy.name!r} exists") from None
    return policy


def policy_get(*, actor: Actor, policy_id: int) -> Policy:
    require_system(actor, "replication-policy", "read")
    found = (
        Policy.objects.select_related("src_endpoint", "dest_endpoint").filter(pk=policy_id).first()
    )
    if found is None:
        raise NotFound(message=f"policy {policy_id} not found")
    return found


def policy_update(*, actor: Actor, policy_id: int, data: dict[str, Any]) -> Policy:
    require_system(actor, "replication-policy", "update")
    policy = policy_get(actor=actor, policy_id=policy_id)
    _apply(policy, data)
    try:
        with transaction.atomic():
            policy.save()
            _record(actor, AuditOperation.UPDATE, policy)
    except IntegrityError:
        raise Conflict(f"a policy named {policy.name!r} exists") from None
    return policy


def policy_delete(*, actor: Actor, policy_id: int) -> None:
    require_system(actor, "replication-policy", "delete")
    policy = policy_get(actor=actor, policy_id=policy_id)
    if policy.executions.exclude(status__in=FINAL).exists():
        raise PreconditionFailed("the policy has a running execution: stop it first")
    with transaction.atomic():
        _record(actor, AuditOperation.DELETE, policy)
        policy.delete()
