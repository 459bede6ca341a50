"""Scheduled jobs fire once per period, however many schedulers run.

Every replica may run ``serve`` with all roles, so every replica runs Celery
beat, and each beat sends each scheduled task once per interval. The task
itself decides: it claims ``(job, period)`` by inserting a ``ScheduledRun`` row
under a unique constraint — the database is the truth, on SQLite and on
PostgreSQL alike, with or without Redis. The first claim of a period runs; any
other task of that period finds the row and skips. A retry or a redelivery
(acks late, a worker lost) of the claiming task carries the same task id and
runs again, so a failed run is finished, not lost.

The period is ``floor(now / interval)``: beats started at different times fire
at different offsets inside a period, and only the first of them runs.
"""

from __future__ import annotations

import contextlib
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry.models import ScheduledRun

KEEP_PERIODS = 100


def claim(*, name: str, interval: float, task_id: str, now: float | None = None) -> int | None:
    """The current period if this task runs the job in it, else None."""
    period = int((time.time() if now is None else now) // max(interval, 1))
    with contextlib.suppress(IntegrityError), transaction.atomic():
        ScheduledRun.objects.create(name=name, period=period, task_id=task_id)
    claimed = ScheduledRun.objects.filter(name=name, period=period, task_id=task_id).exists()
    if not claimed:
        return None
    ScheduledRun.objects.filter(name=name, period__lt=period - KEEP_PERIODS).delete()
    return period


def finished(*, name: str, task_id: str) -> None:
    ScheduledRun.objects.filter(name=name, task_id=task_id).update(finished_at=timezone.now())
