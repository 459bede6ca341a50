"""Harbor's shapes for replication's rows (swagger: Registry, RegistryInfo,
ReplicationPolicy, ReplicationExecution, ReplicationTask). Secrets never
appear: ``access_secret`` is always empty."""

from __future__ import annotations

from typing import Any

from accounts.api.render import ts
from replication.adapters.base import Info
from replication.models import Endpoint, Execution, Policy, Status, Task

EXECUTION_STATUS = {Status.PENDING: "InProgress"}


def registry(e: Endpoint) -> dict[str, Any]:
    return {
        "id": e.pk,
        "name": e.name,
        "description": e.description,
        "url": e.url,
        "type": e.type,
        "insecure": e.insecure,
        "ca_certificate": e.ca_pem,
        "credential": {"type": e.credential_type, "access_key": e.access_key, "access_secret": ""},
        "status": e.status,
        "creation_time": ts(e.created_at),
        "update_time": ts(e.updated_at),
    }


def info(i: Info) -> dict[str, Any]:
    filters = [{"type": f, "style": "input", "values": []} for f in i.supported_resource_filters]
    return {
        "type": i.type,
        "description": i.description,
        "supported_resource_filters": filters,
        "supported_triggers": list(i.supported_triggers),
        "supported_copy_by_chunk": i.supported_copy_by_chunk,
    }


def policy(p: Policy) -> dict[str, Any]:
    return {
        "id": p.pk,
        "name": p.name,
        "description": p.description,
        "src_registry": registry(p.src_endpoint) if p.src_endpoint else None,
        "dest_registry": registry(p.dest_endpoint) if p.dest_endpoint else None,
        "dest_namespace": p.dest_namespace,
        "dest_namespace_replace_count": p.dest_namespace_replace_count,
        "trigger": {"type": p.trigger, "trigger_settings": {"cron": p.cron}},
        "filters": p.filters,
        "replicate_deletion": p.replicate_deletion,
        "deletion": p.replicate_deletion,
        "override": p.override,
        "enabled": p.enabled,
        "speed": p.speed_kb,
        "copy_by_chunk": p.copy_by_chunk,
        "single_active_replication": p.single_active,
        "creation_time": ts(p.created_at),
        "update_time": ts(p.updated_at),
    }


def execution(e: Execution, in_progress: int = 0) -> dict[str, Any]:
    return {
        "id": e.pk,
        "policy_id": e.policy_id,
        "status": EXECUTION_STATUS.get(Status(e.status), e.status),
        "trigger": e.trigger,
        "start_time": ts(e.started_at),
        "end_time": ts(e.ended_at),
        "status_text": e.status_text,
        "total": e.total,
        "failed": e.failed,
        "succeed": e.succeeded,
        "in_progress": max(e.total - e.failed - e.succeeded - e.stopped, 0)
        if not e.ended_at
        else in_progress,
        "stopped": e.stopped,
    }


def task(t: Task) -> dict[str, Any]:
    return {
        "id": t.pk,
        "execution_id": t.execution_id,
        "status": t.status,
        "job_id": str(t.pk),
        "operation": t.operation,
        "resource_type": t.resource_type,
        "src_resource": t.src_resource,
        "dst_resource": t.dst_resource,
        "start_time": ts(t.started_at),
        "end_time": ts(t.ended_at),
    }
