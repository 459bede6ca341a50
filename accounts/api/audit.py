"""``/api/v2.0/audit-logs`` and ``/api/v2.0/projects/{project_name}/logs``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.api.base import HarborView
from accounts.api.paging import apply_sort, paginate, query_q
from accounts.api.render import ts
from accounts.errors import Invalid, Unauthenticated
from accounts.services.projects import project_lookup
from audit.events import event_types
from audit.models import AuditEvent

Q_FIELDS = {
    "username": "username",
    "resource": "resource",
    "resource_type": "resource_type",
    "operation": "operation",
}
SORT_FIELDS = {"op_time": "occurred_at", "username": "username"}


def render(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "username": event.username,
        "resource": event.resource,
        "resource_type": event.resource_type,
        "operation": event.operation,
        "operation_result": event.result == "success",
        "op_time": ts(event.occurred_at),
    }


def render_ext(event: AuditEvent) -> dict[str, Any]:
    """Harbor 2.13's AuditLogExt shape."""
    return {
        "id": event.pk,
        "username": event.username,
        "resource": event.resource,
        "resource_type": event.resource_type,
        "operation": event.operation,
        "operation_description": f"{event.operation} {event.resource_type} {event.resource}",
        "operation_result": event.result == "success",
        "op_time": ts(event.occurred_at),
    }


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"invalid time {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def filtered(rows: QuerySet[AuditEvent], request: Request) -> QuerySet[AuditEvent]:
    """Harbor's q= for audit logs: ``k=v``, ``k=~v`` (contains) and
    ``op_time=[from~to]``; only the documented fields."""
    raw = query_q(request)
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise Invalid(f"cannot filter on {part!r}")
        if key == "op_time":
            if not (value.startswith("[") and value.endswith("]") and "~" in value):
                raise Invalid("op_time takes [from~to]")
            start, _, end = value[1:-1].partition("~")
            if start.strip():
                rows = rows.filter(occurred_at__gte=_time(start))
            if end.strip():
                rows = rows.filter(occurred_at__lte=_time(end))
        elif key in Q_FIELDS:
            field = Q_FIELDS[key]
            rows = (
                rows.filter(**{f"{field}__icontains": value[1:]})
                if value.startswith("~")
                else rows.filter(**{field: value})
            )
        else:
            raise Invalid(f"cannot filter on {key!r}")
    return apply_sort(rows, request, SORT_FIELDS, default="-occurred_at")


class AuditLogList(HarborView):
    """System administrators (and system robots granted audit-log:list) see
    everything; others see the logs of projects whose logs they may list."""

    renderer = staticmethod(render)

    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if not actor.authenticated:
            raise Unauthenticated()
        rows = AuditEvent.objects.all()
        if not access.system_can(actor, "audit-log", "list"):
            # By the project's id, not its name: a new project of a deleted
            # one's name does not inherit its history.
            ids = access.projects_where(actor, "log", "list").values("pk")
            rows = rows.filter(project_id__in=ids)
        return paginate(
            request, filtered(rows, request), lambda page: [self.renderer(e) for e in page]
        )


class ProjectLogs(HarborView):
    renderer = staticmethod(render)

    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_lookup(actor=actor, ref=ref, by_name=True)
        access.require(actor, "log", "list", project)
        rows = AuditEvent.objects.filter(project_id=project.pk)
        return paginate(
            request, filtered(rows, request), lambda page: [self.renderer(e) for e in page]
        )


class AuditLogExtList(AuditLogList):
    renderer = staticmethod(render_ext)


class AuditLogEventTypes(HarborView):
    """Harbor's ``/auditlog-exts/events``: the event types Berth records (a
    fixed vocabulary, for any authenticated caller)."""

    def get(self, request: Request) -> Response:
        if not self.actor(request).authenticated:
            raise Unauthenticated()
        return Response([{"event_type": name} for name in event_types()])


class ProjectLogExts(ProjectLogs):
    renderer = staticmethod(render_ext)
