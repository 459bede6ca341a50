"""Durable domain events: an outbox written in the change's own transaction and
delivered at least once, in order, to the consumers named in
``BERTH_EVENT_CONSUMERS``.

Producers (the services of ``accounts`` and ``registry``) call :func:`emit`
inside the transaction that makes the change, after the writes that take its
row locks: the event then exists exactly when the change does, and events of
one repository or project are numbered in the order their changes committed.
A committed event triggers a delivery task; the scheduler runs one every
``BERTH_EVENT_SWEEP_SECONDS`` as well, so an event whose task was lost (a web
process killed between commit and publish, a broker restart) is still
delivered.

:func:`deliver` hands every consumer the undelivered events, oldest first, in
batches, and marks them delivered in the same transaction as the consumers'
own database writes: a consumer that only writes to the database sees each
event exactly once; one that calls out (webhooks, replication) may see an event
again after a crash and must be idempotent. A batch whose consumer fails is
rolled back whole and tried again on the next run (its attempts and error are
kept on the events). Dispatchers run one at a time (``DispatchLock``).

Consumers are named by dotted path, so the kit imports none of the apps that
consume: ``BERTH_EVENT_CONSUMERS = {"audit": "audit.consumers.record"}``. A
consumer is ``handler(events: list[Event]) -> None``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from kit.models import DispatchLock, Event

log = logging.getLogger("berth.events")

Consumer = Callable[[list[Event]], None]

# Kinds, declared once.
MANIFEST_PUSHED = "manifest.pushed"
TAG_CREATED = "tag.created"
TAG_DELETED = "tag.deleted"
ARTIFACT_DELETED = "artifact.deleted"
REPOSITORY_DELETED = "repository.deleted"
PROJECT_CREATED = "project.created"
PROJECT_UPDATED = "project.updated"
PROJECT_DELETED = "project.deleted"
MEMBER_ADDED = "member.added"
MEMBER_UPDATED = "member.updated"
MEMBER_REMOVED = "member.removed"
KINDS = frozenset(
    {
        MANIFEST_PUSHED,
        TAG_CREATED,
        TAG_DELETED,
        ARTIFACT_DELETED,
        REPOSITORY_DELETED,
        PROJECT_CREATED,
        PROJECT_UPDATED,
        PROJECT_DELETED,
        MEMBER_ADDED,
        MEMBER_UPDATED,
        MEMBER_REMOVED,
    }
)


class OutsideTransaction(RuntimeError):
    """emit() was called outside the change's transaction."""


def emit(kind: str, *, key: str, **payload: Any) -> None:
    """Write an event in the caller's transaction (which must be open)."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if not transaction.get_connection().in_atomic_block:
        raise OutsideTransaction(f"{kind}: emit() belongs inside the change's transaction")
    Event.objects.create(kind=kind, key=key[:512], payload=payload)
    transaction.on_commit(request_delivery)


# When this process last asked for a delivery run: one request per interval is
# enough, since a run delivers everything committed before it starts and the
# sweep catches the rest.
_last_request = 0.0


def request_delivery() -> None:
    """Ask a worker for a delivery run (after commit; never fails the caller)."""
    global _last_request
    if not settings.BERTH_EVENT_REQUEST_ON_COMMIT:
        return
    now = time.monotonic()
    if now - _last_request < settings.BERTH_EVENT_REQUEST_INTERVAL:
        return
    _last_request = now
    try:
        from celery import current_app

        current_app.send_task("kit.tasks.deliver_events")
    except Exception:
        # The sweep delivers it; a broker hiccup must not fail a committed change.
        log.warning("could not request event delivery; the sweep will deliver", exc_info=True)


def reset() -> None:
    """Forget this process's last delivery request (tests, forked children)."""
    global _last_request
    _last_request = 0.0


def consumers() -> dict[str, Consumer]:
    return {name: import_string(path) for name, path in settings.BERTH_EVENT_CONSUMERS.items()}


def deliver(*, batch: int = 200, limit: int | None = None) -> int:
    """Deliver undelivered events to every consumer, oldest first; returns how
    many were delivered. Stops at the first batch that fails (order is kept:
    nothing after it is delivered before it)."""
    if not _pending().exists():
        # A read: an idle sweep or a request that found its events delivered by
        # an earlier run takes no write lock (SQLite has one writer, pushes need it).
        return 0
    handlers = consumers()
    DispatchLock.objects.get_or_create(id=1)
    delivered = 0
    while limit is None or delivered < limit:
        size = batch if limit is None else min(batch, limit - delivered)
        try:
            count = _deliver_batch(handlers, size)
        except Exception as exc:
            _record_failure(size, exc)
            log.exception("event delivery failed; it is tried again on the next run")
            break
        delivered += count
        if count < size:
            break
    return delivered


def _deliver_batch(handlers: dict[str, Consumer], size: int) -> int:
    with transaction.atomic():
        # First write of the transaction: dispatchers queue here.
        DispatchLock.objects.filter(id=1).update(runs=F("runs") + 1)
        events = list(_pending()[:size])
        if not events:
            return 0
        for name, handler in handlers.items():
            with transaction.atomic():
                try:
                    handler(events)
                except Exception as exc:
                    raise DeliveryFailed(name, exc) from exc
        Event.objects.filter(pk__in=[e.pk for e in events]).update(delivered_at=timezone.now())
        return len(events)


class DeliveryFailed(RuntimeError):
    def __init__(self, consumer: str, cause: Exception) -> None:
        super().__init__(f"{consumer}: {type(cause).__name__}: {cause}")
        self.consumer = consumer


def _record_failure(size: int, exc: Exception) -> None:
    try:
        with transaction.atomic():
            ids = list(_pending().values_list("id", flat=True)[:size])
            Event.objects.filter(pk__in=ids).update(
                attempts=F("attempts") + 1, last_error=str(exc)[:500]
            )
    except Exception:
        log.exception("could not record the event delivery failure")


def _pending() -> QuerySet[Event]:
    """Undelivered events, oldest first (the partial index event_undelivered)."""
    return Event.objects.filter(delivered_at__isnull=True).order_by("id")


def undelivered() -> int:
    return _pending().count()


__all__ = ["KINDS", "Consumer", "Event", "OutsideTransaction", "deliver", "emit", "reset"]
