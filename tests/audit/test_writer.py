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
