"""Harbor's six-field cron (kit/cron.py): what it accepts, what it refuses with
a 400's message, and which minutes it names."""

from __future__ import annotations

import datetime

import pytest

from kit import cron
from kit.errors import Invalid

UTC = datetime.UTC


@pytest.mark.parametrize(
    "expression",
    ["0 0 0 * * *", "0 */5 * * * *", "0 0 0 * * ?", "0 30 2 ? * MON-FRI", "0 0 0 1 1 *"],
)
def test_harbors_crons_are_accepted(expression):
    cron.parse(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("every day", "six fields expected"),
        ("* * * * *", "six fields expected"),
        ("*/10 * * * * *", "seconds must be one value"),
        ("0 61 * * * *", "invalid cron"),
        ("0 ,,, * * * *", "invalid cron"),
        ("0 */0 * * * *", "invalid cron"),
        ("0 0 0 31 2 *", "invalid cron"),
        ("0 0 0 * * 8", "invalid cron"),
        ("0 0 0 * * *" + " " * 200, "not a cron expression"),
        ("0 0 0 * * \uff0a", "not a cron expression"),  # a full-width asterisk
    ],
)
def test_what_is_not_a_cron_is_refused_clearly(expression, message):
    with pytest.raises(Invalid, match=message):
        cron.parse(expression)


def test_fires_at_names_the_minutes_of_the_cron():
    daily = "0 30 2 * * *"
    assert cron.fires_at(daily, datetime.datetime(2026, 3, 4, 2, 30, tzinfo=UTC))
    assert not cron.fires_at(daily, datetime.datetime(2026, 3, 4, 2, 31, tzinfo=UTC))
    weekdays = "0 0 9 * * MON-FRI"
    assert cron.fires_at(weekdays, datetime.datetime(2026, 3, 6, 9, 0, tzinfo=UTC))  # a Friday
    assert not cron.fires_at(weekdays, datetime.datetime(2026, 3, 7, 9, 0, tzinfo=UTC))
