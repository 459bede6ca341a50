"""Live status of replication executions in the admin (accounts/livestatus.py):
tasks done of the total, and the end of the latest task's log."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Right
from django.http import HttpRequest
from django.utils.translation import gettext

from accounts.livestatus import LOG_TAIL_CHARS, LiveStatusAdmin
from replication.models import FINAL, Execution, Task


def execution_progress(execution: Execution) -> str:
    done = execution.succeeded + execution.failed + execution.stopped
    return gettext("%(done)d of %(total)d tasks done, %(failed)d failed") % {
        "done": done,
        "total": execution.total,
        "failed": execution.failed,
    }


class ExecutionLive(LiveStatusAdmin):
    """ExecutionAdmin's live status: status, task counts, the latest log."""

    live_cells = ("status", "total", "succeeded", "failed", "stopped", "ended_at", "status_text")

    def live_active(self, obj: Any) -> bool:
        return obj.status not in FINAL

    def live_progress(self, obj: Any) -> str:
        return execution_progress(obj)

    def live_log_tail(self, obj: Any) -> str:
        return str(getattr(obj, "live_log_tail", "") or obj.status_text or "")

    def live_queryset(self, request: HttpRequest, detail: bool) -> QuerySet[Any]:
        rows = self.get_queryset(request).defer("scope")
        if detail:
            latest = (
                Task.objects.filter(execution=OuterRef("pk"))
                .exclude(log="")
                .order_by("-id")
                .annotate(tail=Right("log", LOG_TAIL_CHARS))
                .values("tail")[:1]
            )
            rows = rows.annotate(live_log_tail=Subquery(latest))
        return rows
