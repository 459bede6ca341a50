"""Registry jobs (Celery).

Every task is safe to run twice (a redelivery after a lost worker, a retry, two
schedulers): it acknowledges late, retries with exponential back-off when the
database or the blob storage fails, and a scheduled run claims its period first
(registry/services/schedule.py) so that it runs once however many replicas run
the scheduler.
"""

from __future__ import annotations

import datetime
import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from accounts.access import Actor
from accounts.errors import Conflict
from registry.models import RetentionExecution
from registry.services import quotas, retention, schedule, systemjobs
from registry.services.uploads import uploads_purge

log = logging.getLogger("berth.registry")

# What a later attempt may get past: the database or the storage briefly away.
TRANSIENT = (DatabaseError, OSError, BotoCoreError, ClientError)
RETRY = {
    "acks_late": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(bind=True, **RETRY)
def purge_stale_uploads(self, scheduled: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Cancel upload sessions idle for BERTH_UPLOAD_MAX_AGE. ``scheduled``: sent
    by the scheduler, runs once per BERTH_UPLOAD_PURGE_INTERVAL."""
    name = "purge-stale-uploads"
    task_id = self.request.id or ""
    if scheduled:
        period = schedule.claim(
            name=name, interval=settings.BERTH_UPLOAD_PURGE_INTERVAL, task_id=task_id
        )
        if period is None:
            log.info("%s: skipped, another task ran this period", name)
            return 0
        log.info("%s: period %d: running", name, period)
    purged = uploads_purge(older_than=datetime.timedelta(seconds=settings.BERTH_UPLOAD_MAX_AGE))
    if scheduled:
        schedule.finished(name=name, task_id=task_id)
    log.info("purged %d stale upload sessions", purged)
    return purged


@shared_task(bind=True, **RETRY)
def reconcile_quotas(self, scheduled: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Fold every project's usage rows into one and repair its charges
    (registry/services/quotas.py). ``scheduled``: once per
    BERTH_QUOTA_RECONCILE_INTERVAL. Returns the projects whose usage was off."""
    name = "reconcile-quotas"
    task_id = self.request.id or ""
    if scheduled:
        period = schedule.claim(
            name=name, interval=settings.BERTH_QUOTA_RECONCILE_INTERVAL, task_id=task_id
        )
        if period is None:
            log.info("%s: skipped, another task ran this period", name)
            return 0
    results = quotas.reconcile()
    off = [r for r in results if r.correction or r.added or r.removed]
    for r in off:
        log.warning(
            "quota of project %d corrected by %+d bytes (%d digests charged, %d released)",
            r.project_id,
            r.correction,
            r.added,
            r.removed,
        )
    if scheduled:
        schedule.finished(name=name, task_id=task_id)
    return len(off)


@shared_task(bind=True, **RETRY)
def run_retention(self, execution_id: int) -> str:  # type: ignore[no-untyped-def]
    """Run a retention execution (registry/services/retention.py). Its deletes
    are recorded as the requester's (a manual run) or the scheduler's."""
    requested_by = (
        RetentionExecution.objects.filter(pk=execution_id)
        .values_list("requested_by", flat=True)
        .first()
    )
    actor = (
        Actor(kind="user", name=requested_by)
        if requested_by
        else Actor(kind="system", name="retention-scheduler")
    )
    return str(retention.run(execution_id=execution_id, actor=actor).status)


@shared_task(bind=True, **RETRY)
def retention_tick(self, scheduled: bool = True) -> int:  # type: ignore[no-untyped-def]
    """Every minute (Celery beat): start the runs of the retention policies
    whose cron names this minute, once however many schedulers send the tick."""
    task_id = self.request.id or ""
    period = schedule.claim(name="retention-tick", interval=60, task_id=task_id)
    if period is None:
        return 0
    moment = datetime.datetime.fromtimestamp(period * 60, tz=datetime.UTC)
    started = 0
    for policy in retention.scheduled_due(moment):
        try:
            retention.execution_start(actor=None, policy=policy, dry_run=False, trigger="SCHEDULE")
            started += 1
        except Conflict:
            log.info("retention policy %s: a run is still active; skipped", policy.pk)
    schedule.finished(name="retention-tick", task_id=task_id)
    return started


@shared_task(bind=True, **RETRY)
def run_system_job(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    """Run a garbage collection or audit-log purge (registry/services/systemjobs.py)."""
    job = systemjobs.job_run(job_id)
    return job.status if job is not None else "skipped"


@shared_task(bind=True, **RETRY)
def system_jobs_tick(self) -> int:  # type: ignore[no-untyped-def]
    """Sent every minute by the scheduler: start the scheduled system jobs due now."""
    return len(systemjobs.schedules_tick(task_id=self.request.id or ""))
