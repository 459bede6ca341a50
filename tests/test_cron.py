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


def test_the_day_fields_fire_on_either_as_harbors_parser_does():
    # The 13th, or any Friday (robfig/cron's and Vixie cron's reading).
    expression = "0 0 12 13 * FRI"
    assert cron.fires_at(expression, datetime.datetime(2026, 3, 13, 12, 0, tzinfo=UTC))  # a Friday
    assert cron.fires_at(expression, datetime.datetime(2026, 4, 13, 12, 0, tzinfo=UTC))  # a Monday
    assert cron.fires_at(expression, datetime.datetime(2026, 4, 17, 12, 0, tzinfo=UTC))  # a Friday
    assert not cron.fires_at(expression, datetime.datetime(2026, 4, 14, 12, 0, tzinfo=UTC))


def test_previous_and_next_fire_times():
    moment = datetime.datetime(2026, 3, 4, 2, 30, 10, tzinfo=UTC)
    hourly = "0 0 * * * *"
    assert cron.previous(hourly, moment) == datetime.datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    assert cron.next_after(hourly, moment) == datetime.datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    on_the_hour = datetime.datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    assert cron.previous(hourly, on_the_hour) == on_the_hour
    every_5s = "*/5 * * * * *"
    assert cron.previous(every_5s, moment) == moment
    assert cron.next_after(every_5s, moment) == moment + datetime.timedelta(seconds=5)


def test_any_seconds_field_only_where_asked():
    with pytest.raises(Invalid, match="seconds must be one value"):
        cron.parse("*/5 * * * * *")
    assert cron.parse("*/5 * * * * ?", any_second=True) == "*/5 * * * * *"
    with pytest.raises(Invalid, match="six fields expected"):
        cron.parse("0 * * * *", any_second=True)
