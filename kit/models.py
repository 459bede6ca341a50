"""The outbox of durable domain events (kit/events.py)."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    """A change others react to, written in the same transaction as the change:
    it exists exactly when the change does. ``delivered_at`` is set once every
    consumer has had it (in the consumers' own transaction)."""

    kind = models.CharField(max_length=64)
    # What orders events for consumers: the repository or project name.
    key = models.CharField(max_length=512)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            # The dispatcher's scan: undelivered events, oldest first.
            models.Index(
                fields=["id"],
                name="event_undelivered",
                condition=models.Q(delivered_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.kind} {self.key}"


class DispatchLock(models.Model):
    """One row: a dispatcher updates it first, so dispatchers run one at a time
    on every database (a row lock on PostgreSQL, the write lock on SQLite)."""

    id = models.IntegerField(primary_key=True, default=1)
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"dispatch lock ({self.runs} runs)"
