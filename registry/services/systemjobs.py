"""System jobs: garbage collection and the audit-log purge (Harbor's ``/system/gc``
and ``/system/purgeaudit``), as runs with their state in Berth's tables.

A run is a ``SystemJob`` row: created Pending by a manual trigger or the
schedule, taken Running by the Celery task (``registry.tasks.run_system_job``),
finished Success, Error or Stopped, with counts and a log. One run of a kind at
a time: a partial unique constraint on active runs makes a second trigger a
Conflict (409). A stop request is a flag the run reads between batches.

Schedules are Harbor's: ``None``, ``Hourly``, ``Daily``, ``Weekly`` or ``Custom``
with Harbor's six-field cron (seconds first); a tick task sent every minute by
Celery beat claims the minute (registry/services/schedule.py) and starts the
runs whose cron names it.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from accounts import access
from accounts.access import Actor
from audit.models import AuditEvent
from kit import params
from kit.cron import fires_at as cron_fires_at
from kit.cron import next_after as cron_next_after
from kit.cron import parse as cron_parse
from kit.errors import Conflict, Invalid, NotFound
from registry.models import SystemJob, SystemJobSchedule
from registry.services import gc

log = logging.getLogger("berth.registry")

Kind = SystemJob.Kind
Status = SystemJob.Status

# Harbor's RBAC resources (accounts/rbac.py).
RESOURCE: dict[str, str] = {Kind.GC: "garbage-collection", Kind.PURGE_AUDIT: "purge-audit"}
# Harbor's job names.
JOB_NAME: dict[str, str] = {Kind.GC: "GARBAGE_COLLECTION", Kind.PURGE_AUDIT: "PURGE_AUDIT_LOG"}
PRESETS = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}
SCHEDULE_TYPES = ("None", "Hourly", "Daily", "Weekly", "Custom", "Schedule")
WORKERS = (1, 10)
ACTIVE = (Status.PENDING, Status.RUNNING)


# --- parameters -----------------------------------------------------------------


def gc_parameters(raw: object) -> dict[str, Any]:
    """Harbor's GC job parameters, checked: ``delete_untagged``, ``dry_run``
    (booleans), ``workers`` (1-10), ``time_window`` (hours, default 2)."""
    given = _object(raw)
    return {
        "delete_untagged": params.boolean(
            given.get("delete_untagged", False), name="delete_untagged"
        ),
        "dry_run": params.boolean(given.get("dry_run", False), name="dry_run"),
        "workers": params.integer(
            given.get("workers", 1), name="workers", minimum=WORKERS[0], maximum=WORKERS[1]
        ),
        "time_window": params.integer(
            given.get("time_window", 2), name="time_window", maximum=24 * 365
        ),
    }


def purge_parameters(raw: object) -> dict[str, Any]:
    """Harbor's purge parameters: ``audit_retention_hour`` (entries older go),
    ``include_event_types`` (comma separated, as ``create_artifact``; empty:
    nothing is purged), ``dry_run``."""
    given = _object(raw)
    types = given.get("include_event_types", "")
    if not isinstance(types, str):
        raise Invalid("include_event_types must be a comma separated string")
    return {
        "audit_retention_hour": params.integer(
            given.get("audit_retention_hour", 168),
            name="audit_retention_hour",
            maximum=24 * 365 * 100,
        ),
        "include_event_types": ",".join(t.strip().lower() for t in types.split(",") if t.strip()),
        "dry_run": params.boolean(given.get("dry_run", False), name="dry_run"),
    }


PARAMETERS: dict[str, Callable[[object], dict[str, Any]]] = {
    Kind.GC: gc_parameters,
    Kind.PURGE_AUDIT: purge_parameters,
}


def _object(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("parameters must be a JSON object")
    return raw


# --- cron -----------------------------------------------------------------------


def _schedule_from(raw: object) -> tuple[str, str]:
    """(type, cron) of Harbor's ScheduleObj; presets get Harbor's crons."""
    given = _object(raw)
    kind = given.get("type")
    if not isinstance(kind, str) or kind not in (*SCHEDULE_TYPES, "Manual"):
        raise Invalid(f"invalid schedule type {str(kind)[:50]!r}")
    cron = given.get("cron") or ""
    if not isinstance(cron, str):
        raise Invalid("cron must be a string")
    if kind in PRESETS:
        cron = PRESETS[kind]
    elif kind in ("Custom", "Schedule"):
        cron_parse(cron)
    else:
        cron = ""
    return kind, cron


def next_run(schedule: SystemJobSchedule) -> datetime.datetime | None:
    if schedule.type == "None" or not schedule.cron:
        return None
    # Runs start at the tick of the minute the cron names.
    return cron_next_after(schedule.cron, timezone.now()).replace(second=0, microsecond=0)


def fires_at(expression: str, moment: datetime.datetime) -> bool:
    """Whether the cron names this minute (kit/cron.py)."""
    return cron_fires_at(expression, moment)


# --- runs -----------------------------------------------------------------------


def job_start(
    *,
    actor: Actor | None,
    kind: str,
    parameters: object,
    trigger: str = "Manual",
    dispatch: Callable[[int], None] | None = None,
) -> SystemJob:
    """A new run, Pending, sent to a worker once committed. Conflict while a
    run of the kind is active. ``actor`` None: the scheduler."""
    if actor is not None:
        access.require_system(actor, RESOURCE[kind], "create")
    checked = PARAMETERS[kind](parameters)
    _abandon_stale(kind)
    try:
        with transaction.atomic():
            job = SystemJob.objects.create(
                kind=kind,
                trigger=trigger,
                parameters=checked,
                dry_run=checked["dry_run"],
                requested_by=actor.name if actor is not None else "",
            )
            send = dispatch or _dispatch
            transaction.on_commit(lambda: send(job.pk))
    except IntegrityError:
        raise Conflict(f"a {Kind(kind).label} run is already in progress") from None
    return job


def _abandon_stale(kind: str) -> None:
    """An active run no worker has touched for BERTH_SYSTEM_JOB_STALE seconds
    (its message lost with a broker, its worker gone for good) stops blocking
    new runs: it is finished as Error. A running job touches its row at every
    batch; a pending one is picked up within seconds by a live worker."""
    stale = timezone.now() - datetime.timedelta(seconds=settings.BERTH_SYSTEM_JOB_STALE)
    for job_id in SystemJob.objects.filter(
        kind=kind, status__in=ACTIVE, updated_at__lt=stale
    ).values_list("pk", flat=True):
        abandoned = SystemJob.objects.filter(
            pk=job_id, status__in=ACTIVE, updated_at__lt=stale
        ).update(status=Status.ERROR, finished_at=timezone.now(), updated_at=timezone.now())
        if abandoned:
            _append_log(job_id, "abandoned: no worker has run this job for too long")
            log.warning("system job %s abandoned: no worker touched it", job_id)


def _dispatch(job_id: int) -> None:
    from registry.tasks import run_system_job

    run_system_job.delay(job_id)


def job_list(*, actor: Actor, kind: str) -> Any:
    access.require_system(actor, RESOURCE[kind], "list")
    return SystemJob.objects.filter(kind=kind).order_by("-created_at", "-id")


def job_get(*, actor: Actor, kind: str, job_id: int) -> SystemJob:
    access.require_system(actor, RESOURCE[kind], "read")
    job = SystemJob.objects.filter(kind=kind, pk=job_id).first()
    if job is None:
        raise NotFound(message=f"{Kind(kind).label} run {job_id} not found")
    return job


def job_stop(*, actor: Actor, kind: str, job_id: int) -> SystemJob:
    """Ask a run to stop: a pending one stops at once, a running one at its
    next batch; a finished one is left as it is."""
    access.require_system(actor, RESOURCE[kind], "stop")
    job = job_get(actor=actor, kind=kind, job_id=job_id)
    SystemJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(stop_requested=True)
    SystemJob.objects.filter(pk=job.pk, status=Status.PENDING).update(
        status=Status.STOPPED, finished_at=timezone.now(), updated_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _append_log(job_id: int, line: str) -> None:
    stamped = f"{timezone.now().isoformat(timespec='milliseconds')} {line}\n"
    SystemJob.objects.filter(pk=job_id).update(
        log=Concat(F("log"), Value(stamped)), updated_at=timezone.now()
    )


def job_run(job_id: int) -> SystemJob | None:
    """Run a job (the Celery task's body). Safe to call again: a redelivered
    task finds its run Running and runs it again (both kinds are idempotent);
    a finished or stopped run is left alone."""
    started = SystemJob.objects.filter(pk=job_id, status__in=ACTIVE).update(
        status=Status.RUNNING, started_at=timezone.now(), updated_at=timezone.now()
    )
    if not started:
        return None
    job = SystemJob.objects.get(pk=job_id)

    def say(line: str) -> None:
        _append_log(job_id, line)

    def should_stop() -> bool:
        # Asked between batches: also the run's heartbeat (_abandon_stale).
        # A run given up as abandoned (_abandon_stale) stops too: another may
        # be collecting now, and two collectors must not overlap.
        alive = SystemJob.objects.filter(
            pk=job_id, status=Status.RUNNING, stop_requested=False
        ).update(updated_at=timezone.now())
        return not alive

    status = Status.SUCCESS
    counts: dict[str, int] = {}
    try:
        if job.kind == Kind.GC:
            counts = _run_gc(job.parameters, say, should_stop)
        else:
            counts = _run_purge(job.parameters, say)
    except gc.Stopped:
        status = Status.STOPPED
    except Exception as exc:
        log.exception("system job %s failed", job_id)
        say(f"error: {type(exc).__name__}: {exc}")
        status = Status.ERROR
    # Only a run still ours: one abandoned meanwhile keeps its Error.
    SystemJob.objects.filter(pk=job_id, status=Status.RUNNING).update(
        status=status, finished_at=timezone.now(), updated_at=timezone.now(), **counts
    )
    job.refresh_from_db()
    return job


def _run_gc(parameters: dict[str, Any], say: gc.Log, should_stop: gc.ShouldStop) -> dict[str, int]:
    checked = gc_parameters(parameters)
    result = gc.collect(
        options=gc.Options(
            delete_untagged=checked["delete_untagged"],
            window=datetime.timedelta(hours=checked["time_window"]),
            workers=checked["workers"],
            dry_run=checked["dry_run"],
        ),
        log=say,
        should_stop=should_stop,
    )
    return {
        "freed_bytes": result.freed_bytes,
        "deleted_blobs": result.blobs,
        "deleted_manifests": result.manifests,
        "deleted_links": result.links,
        "deleted_uploads": result.uploads,
    }


def _run_purge(parameters: dict[str, Any], say: gc.Log) -> dict[str, int]:
    checked = purge_parameters(parameters)
    cutoff = timezone.now() - datetime.timedelta(hours=checked["audit_retention_hour"])
    types = [t for t in checked["include_event_types"].split(",") if t]
    rows = AuditEvent.objects.filter(occurred_at__lt=cutoff)
    pairs = [t.partition("_") for t in types]
    wanted = [(operation, resource) for operation, _, resource in pairs if resource]
    if not wanted:
        say("no event types included: nothing to purge")
        return {"deleted_events": 0}
    match = Q()
    for operation, resource in wanted:
        match |= Q(operation=operation, resource_type=resource)
    rows = rows.filter(match)
    if checked["dry_run"]:
        n = rows.count()
        say(f"dry run: would purge {n} audit log entries older than {cutoff.isoformat()}")
        return {"deleted_events": n}
    deleted, _ = rows.delete()
    say(f"purged {deleted} audit log entries older than {cutoff.isoformat()}")
    return {"deleted_events": deleted}


# --- schedules ------------------------------------------------------------------


def schedule_get(*, actor: Actor, kind: str) -> SystemJobSchedule | None:
    access.require_system(actor, RESOURCE[kind], "read")
    return SystemJobSchedule.objects.filter(kind=kind).first()


def schedule_set(
    *,
    actor: Actor,
    kind: str,
    schedule: object,
    parameters: object,
    dispatch: Callable[[int], None] | None = None,
    manual_allowed: bool = True,
) -> SystemJob | SystemJobSchedule:
    """Harbor's POST/PUT ``…/schedule``: type ``Manual`` starts a run now (its
    row is returned; POST only); any other type sets the schedule (``None``
    clears it)."""
    access.require_system(actor, RESOURCE[kind], "update")
    kind_of, cron = _schedule_from(schedule)
    if kind_of == "Manual":
        if not manual_allowed:
            raise Invalid("a Manual run is started with POST, not PUT")
        return job_start(actor=actor, kind=kind, parameters=parameters, dispatch=dispatch)
    checked = PARAMETERS[kind](parameters)
    row, _ = SystemJobSchedule.objects.update_or_create(
        kind=kind, defaults={"type": kind_of, "cron": cron, "parameters": checked}
    )
    return row


def schedules_tick(*, task_id: str, now: datetime.datetime | None = None) -> list[SystemJob]:
    """Start the runs whose schedule names this minute (once per minute,
    however many schedulers send the tick)."""
    from registry.services import schedule as periods

    moment = (now or timezone.now()).replace(second=0, microsecond=0)
    if (
        periods.claim(name="system-jobs", interval=60, task_id=task_id, now=moment.timestamp())
        is None
    ):
        return []
    started = []
    for row in SystemJobSchedule.objects.exclude(type="None").exclude(cron=""):
        try:
            due = fires_at(row.cron, moment)
        except Invalid:
            continue
        if not due:
            continue
        try:
            started.append(
                job_start(actor=None, kind=row.kind, parameters=row.parameters, trigger="Schedule")
            )
        except Conflict:
            log.info("scheduled %s skipped: a run is in progress", row.kind)
    periods.finished(name="system-jobs", task_id=task_id)
    return started


def parameters_text(job: SystemJob | SystemJobSchedule) -> str:
    """Harbor's ``job_parameters``: the parameters as a JSON string."""
    return json.dumps(job.parameters, sort_keys=True)
