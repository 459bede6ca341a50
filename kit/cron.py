"""Harbor's cron expressions, the one parser Berth's schedules use (garbage
collection and the audit purge, replication's scheduled triggers, tag
retention): six fields, seconds first (``0 0 0 * * *`` is daily at midnight);
``?`` means "any" in the day fields, as in Harbor's parser (robfig/cron).

Parsed by ``croniter`` rather than Celery's ``crontab``: croniter reads the
seconds field itself, walks to the previous and next fire times (what a
scheduler catching up after a restart needs), and, when both day fields are
restricted, fires on either, as robfig/cron and Vixie cron do (Celery's crontab
asks for both). Celery still sends the ticks; this module decides what is due.

Retention and the system jobs run from a tick every minute, so their crons
must name one second (:func:`parse` refuses ``*/10 * * * * *``); replication's
tick may run more often and takes any seconds field (``any_second=True``).
"""

from __future__ import annotations

import datetime

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from kit.errors import Invalid

MAX_LENGTH = 128


def parse(expression: str, *, any_second: bool = False) -> str:
    """The cron, normalised (``?`` read as ``*``, spaces collapsed); :class:`Invalid`
    (a 400) when it is not one of Harbor's or never fires."""
    shown = expression[:100]
    if len(expression) > MAX_LENGTH or not expression.isascii():
        raise Invalid(f"invalid cron {shown!r}: not a cron expression")
    fields = expression.split()
    if len(fields) != 6:
        raise Invalid(f"invalid cron {shown!r}: six fields expected (seconds first)")
    fields = ["*" if f == "?" else f for f in fields]
    if not any_second and not (fields[0].isdigit() and int(fields[0]) < 60):
        raise Invalid(f"invalid cron {shown!r}: seconds must be one value, 0-59")
    normal = " ".join(fields)
    if not croniter.is_valid(normal, second_at_beginning=True):
        raise Invalid(f"invalid cron {shown!r}: a field is out of range or malformed")
    try:
        # One that can never fire (31 February) is refused too.
        _iter(normal, datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)).get_next(
            datetime.datetime
        )
    except (CroniterBadDateError, CroniterBadCronError, CroniterError, ValueError):
        raise Invalid(f"invalid cron {shown!r}: it never fires") from None
    return normal


def _iter(expression: str, start: datetime.datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=True)


def next_after(expression: str, moment: datetime.datetime) -> datetime.datetime:
    """The first time after ``moment`` the cron names."""
    result: datetime.datetime = _iter(parse(expression, any_second=True), moment).get_next(
        datetime.datetime
    )
    return result


def previous(expression: str, moment: datetime.datetime) -> datetime.datetime:
    """The last time at or before ``moment`` the cron names."""
    result: datetime.datetime = _iter(
        parse(expression, any_second=True), moment + datetime.timedelta(microseconds=1)
    ).get_prev(datetime.datetime)
    return result


def fires_at(expression: str, moment: datetime.datetime) -> bool:
    """Whether the cron names a second of the minute of ``moment``."""
    start = moment.replace(second=0, microsecond=0)
    return next_after(expression, start - datetime.timedelta(microseconds=1)) < (
        start + datetime.timedelta(minutes=1)
    )
