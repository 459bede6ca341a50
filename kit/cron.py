"""Harbor's cron expressions: six fields, seconds first (``0 0 0 * * *`` is
daily at midnight). Parsed by Celery's ``crontab`` (the scheduler Berth runs);
jobs fire at minute granularity, so the seconds field must be one second.
A schedule is run by a tick task every minute that asks :func:`fires_at`."""

from __future__ import annotations

import datetime

from celery.schedules import ParseException, crontab

from kit.errors import Invalid

MAX_LENGTH = 128


def parse(expression: str) -> crontab:
    """The crontab of a Harbor cron; :class:`Invalid` (a 400) when it is not one."""
    shown = expression[:100]
    if len(expression) > MAX_LENGTH or not expression.isascii():
        raise Invalid(f"invalid cron {shown!r}: not a cron expression")
    fields = expression.split()
    if len(fields) != 6:
        raise Invalid(f"invalid cron {shown!r}: six fields expected (seconds first)")
    # Harbor's parser (robfig/cron) takes "?" for "any" in the day fields.
    seconds, minute, hour, day_of_month, month, day_of_week = (
        "*" if f == "?" else f for f in fields
    )
    if not (seconds.isdigit() and int(seconds) < 60):
        raise Invalid(f"invalid cron {shown!r}: seconds must be one value, 0-59")
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
    except (ValueError, IndexError, TypeError, ParseException) as exc:
        raise Invalid(f"invalid cron {shown!r}: {exc}") from None


def fires_at(expression: str, moment: datetime.datetime) -> bool:
    """Whether the cron names the minute of ``moment``."""
    c = parse(expression)
    return (
        moment.minute in c.minute
        and moment.hour in c.hour
        and moment.day in c.day_of_month
        and moment.month in c.month_of_year
        and moment.isoweekday() % 7 in c.day_of_week
    )
