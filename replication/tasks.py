"""Replication jobs (Celery): small, acknowledged late, idempotent. The state
is in the execution's rows; a message only names one."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from replication.services import executions

RETRY = {
    "acks_late": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(**RETRY)
def run_execution(execution_id: int) -> str | None:
    """Run (or take over) an execution; nothing when another worker holds it."""
    return executions.run(execution_id)


@shared_task(**RETRY)
def tick() -> int:
    """Scheduled policies that are due; executions whose worker is gone."""
    return executions.tick()
