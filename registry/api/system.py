"""Harbor's system jobs: ``/system/gc`` and ``/system/purgeaudit`` (history, one
run, its log, stop, schedule). Thin: registry/services/systemjobs.py decides."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import HarborView, body, created
from accounts.api.paging import paginate
from accounts.api.render import ts
from registry.models import SystemJob, SystemJobSchedule
from registry.services import systemjobs

PREFIX = {
    SystemJob.Kind.GC: "/api/v2.0/system/gc",
    SystemJob.Kind.PURGE_AUDIT: "/api/v2.0/system/purgeaudit",
}


def _schedule(kind: str, cron: str, next_time: Any) -> dict[str, Any]:
    """Harbor's ScheduleObj; without a next run, no ``next_scheduled_time``
    (the swagger types it a date-time string: never null)."""
    shown: dict[str, Any] = {"type": kind, "cron": cron}
    if next_time is not None:
        shown["next_scheduled_time"] = ts(next_time)
    return shown


def render_job(job: SystemJob) -> dict[str, Any]:
    """Harbor's GCHistory / ExecHistory."""
    return {
        "id": job.pk,
        "job_name": systemjobs.JOB_NAME[SystemJob.Kind(job.kind)],
        "job_kind": "SCHEDULE" if job.trigger == "Schedule" else "MANUAL",
        "job_parameters": systemjobs.parameters_text(job),
        "schedule": _schedule(job.trigger, "", None),
        "job_status": job.status,
        "deleted": False,
        "creation_time": ts(job.created_at),
        "update_time": ts(job.updated_at),
    }


def render_schedule(kind: str, row: SystemJobSchedule | None) -> dict[str, Any]:
    if row is None:
        return {
            "job_name": systemjobs.JOB_NAME[SystemJob.Kind(kind)],
            "job_kind": "SCHEDULE",
            "job_parameters": "{}",
            "parameters": {},
            "schedule": _schedule("None", "", None),
            "deleted": False,
        }
    return {
        "id": row.pk,
        "job_name": systemjobs.JOB_NAME[SystemJob.Kind(kind)],
        "job_kind": "SCHEDULE",
        "job_parameters": systemjobs.parameters_text(row),
        # Harbor's Schedule shape too (harborapi reads the answer as one).
        "parameters": row.parameters,
        "schedule": _schedule(row.type, row.cron, systemjobs.next_run(row)),
        "deleted": False,
        "creation_time": ts(row.created_at),
        "update_time": ts(row.updated_at),
    }


class _KindView(HarborView):
    kind: str = SystemJob.Kind.GC

    @staticmethod
    def job_id(ids: dict[str, int]) -> int:
        """Harbor's ``gc_id`` or ``purge_id``, whichever the route names."""
        return next(iter(ids.values()))


class History(_KindView):
    def get(self, request: Request) -> Response:
        rows = systemjobs.job_list(actor=self.actor(request), kind=self.kind)
        return paginate(request, rows, lambda page: [render_job(job) for job in page])


class Detail(_KindView):
    def get(self, request: Request, **ids: int) -> Response:
        job = systemjobs.job_get(actor=self.actor(request), kind=self.kind, job_id=self.job_id(ids))
        return Response(render_job(job))

    def put(self, request: Request, **ids: int) -> Response:
        systemjobs.job_stop(actor=self.actor(request), kind=self.kind, job_id=self.job_id(ids))
        return Response(status=200)


class Log(_KindView):
    def get(self, request: Request, **ids: int) -> HttpResponse:
        job = systemjobs.job_get(actor=self.actor(request), kind=self.kind, job_id=self.job_id(ids))
        return HttpResponse(job.log, content_type="text/plain; charset=utf-8")


class Schedule(_KindView):
    def get(self, request: Request) -> Response:
        row = systemjobs.schedule_get(actor=self.actor(request), kind=self.kind)
        return Response(render_schedule(self.kind, row))

    def post(self, request: Request) -> Response:
        data = body(request)
        done = systemjobs.schedule_set(
            actor=self.actor(request),
            kind=self.kind,
            schedule=data.get("schedule"),
            parameters=data.get("parameters"),
        )
        if isinstance(done, SystemJob):
            return created(f"{PREFIX[SystemJob.Kind(self.kind)]}/{done.pk}")
        return created(f"{PREFIX[SystemJob.Kind(self.kind)]}/schedule")

    def put(self, request: Request) -> Response:
        data = body(request)
        systemjobs.schedule_set(
            actor=self.actor(request),
            kind=self.kind,
            schedule=data.get("schedule"),
            parameters=data.get("parameters"),
            manual_allowed=False,
        )
        return Response(status=200)


def views(kind: str) -> dict[str, Any]:
    """The four views of one kind of job (Harbor's GC and purge APIs are alike)."""
    classes: tuple[tuple[str, type[_KindView]], ...] = (
        ("history", History),
        ("detail", Detail),
        ("log", Log),
        ("schedule", Schedule),
    )
    return {name: cls.as_view(kind=kind) for name, cls in classes}
