"""The audit trail as a consumer of durable events (kit/events.py,
``BERTH_EVENT_CONSUMERS``): a change that carries its audit entry in its event
reaches the trail even when the process that made it is killed right after
committing. Runs in the dispatcher's transaction, so each entry is written
exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audit.events import Operation, Resource, Result
from audit.models import AuditEvent
from audit.services import audit_entry, with_project_ids
from kit.models import Event


def record(events: list[Event]) -> None:
    entries = [
        _entry(event.payload["audit"], event) for event in events if "audit" in event.payload
    ]
    if entries:
        AuditEvent.objects.bulk_create(AuditEvent(**e) for e in with_project_ids(entries))


def _entry(entry: dict[str, Any], event: Event) -> dict[str, Any]:
    when = datetime.fromisoformat(entry["at"]) if entry.get("at") else event.created_at
    return audit_entry(
        username=entry.get("username", ""),
        actor_kind=entry.get("actor_kind", "anonymous"),
        operation=Operation(entry["operation"]),
        resource_type=Resource(entry["resource_type"]),
        resource=entry.get("resource", ""),
        project_name=entry.get("project", ""),
        project_id=entry.get("project_id"),
        result=Result(entry.get("result", Result.SUCCESS)),
        client_ip=entry.get("client_ip", ""),
        detail=entry.get("detail"),
        when=when,
    )
