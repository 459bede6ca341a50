"""Live status of garbage collection and audit-purge runs in the admin
(accounts/livestatus.py): what a running SystemJob shows while it runs."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Right
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext, ngettext

from accounts.livestatus import LOG_TAIL_CHARS, LiveStatusAdmin
from registry.models import SystemJob

ACTIVE = (SystemJob.Status.PENDING, SystemJob.Status.RUNNING)


def systemjob_progress(job: SystemJob) -> str:
    """One line: what the run has done so far (or, for a dry run, would do)."""
    if job.kind == SystemJob.Kind.PURGE_AUDIT:
        return ngettext(
            "%(count)d audit event deleted", "%(count)d audit events deleted", job.deleted_events
        ) % {"count": job.deleted_events}
    return gettext("%(size)s freed, %(blobs)d blobs and %(manifests)d manifests deleted") % {
        "size": filesizeformat(job.freed_bytes),
        "blobs": job.deleted_blobs,
        "manifests": job.deleted_manifests,
    }


class SystemJobLive(LiveStatusAdmin):
    """SystemJobAdmin's live status: its status, counts and log tail."""

    live_cells = (
        "status",
        "freed",
        "deleted_blobs",
        "deleted_manifests",
        "deleted_links",
        "deleted_uploads",
        "deleted_events",
        "started_at",
        "finished_at",
    )

    def live_active(self, obj: Any) -> bool:
        return obj.status in ACTIVE

    def live_progress(self, obj: Any) -> str:
        return systemjob_progress(obj)

    def live_queryset(self, request: HttpRequest, detail: bool) -> QuerySet[Any]:
        rows = self.get_queryset(request).defer("log")
        if detail:
            rows = rows.annotate(live_log_tail=Right("log", LOG_TAIL_CHARS))
        return rows
