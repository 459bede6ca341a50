"""The audit buffer's writer (audit/services.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 12, 5, 21, 0, 1, 123456, tzinfo=UTC),
        datetime(2026, 12, 5, 21, 0, 1, tzinfo=UTC),  # no microseconds: no fraction
        datetime(2026, 12, 5, 22, 0, 1, 5, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_the_writers_time_text_is_djangos(when):
    """The buffer writer's own datetime adapter (SQLite) stores what Django's
    adapter stores, so rows sort and filter alike whichever wrote them."""
    from django.db import connection

    from audit.services import _datetime_adapter

    assert _datetime_adapter()(when) == connection.ops.adapt_datetimefield_value(when)


def _pull(i: int) -> None:
    from accounts.access import Actor
    from audit import services
    from audit.events import Operation, Resource

    services.record_later(
        actor=Actor(kind="user", id=1, name="admin"),
        operation=Operation.PULL,
        resource_type=Resource.ARTIFACT,
        resource=f"library/kept:v{i}",
        project="library",
        pulled_repository="library/kept",
    )


@pytest.mark.django_db
def test_a_failed_write_keeps_the_events_in_order_for_the_next(monkeypatch):
    """A write that fails (the database away) loses nothing: the events go back
    in front of those that arrived meanwhile, and the next flush writes them
    all, oldest first."""
    from audit import services
    from audit.models import AuditEvent

    services.discard()
    for i in range(3):
        _pull(i)
    real_write = services._write

    def failing(pending):
        _pull(3)  # arrives while the write is under way
        raise OSError("database away")

    monkeypatch.setattr(services, "_write", failing)
    with pytest.raises(OSError):
        services.flush()
    assert len(services._buffer) == 4
    monkeypatch.setattr(services, "_write", real_write)
    assert services.flush() == 4
    rows = AuditEvent.objects.filter(resource__startswith="library/kept:").order_by("id")
    assert [r.resource for r in rows] == [f"library/kept:v{i}" for i in range(4)]
    assert {(r.operation, r.username) for r in rows} == {("pull", "admin")}
