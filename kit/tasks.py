"""The event dispatcher as a Celery task (kit/events.py)."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from kit import events


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def deliver_events() -> int:
    """Deliver what is undelivered; safe to run any number of times at once
    (dispatchers queue on ``DispatchLock``)."""
    return events.deliver()
