"""Scheduled jobs claim their period in the database: one run per period."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from registry.models import ScheduledRun
from registry.services import schedule


@pytest.mark.django_db
def test_first_claim_of_a_period_runs_the_others_skip():
    assert schedule.claim(name="job", interval=60, task_id="a", now=600.0) == 10
    assert schedule.claim(name="job", interval=60, task_id="b", now=659.0) is None
    # A retry or redelivery of the claiming task runs again.
    assert schedule.claim(name="job", interval=60, task_id="a", now=630.0) == 10
    # The next period is free again; another job has periods of its own.
    assert schedule.claim(name="job", interval=60, task_id="b", now=660.0) == 11
    assert schedule.claim(name="other", interval=60, task_id="c", now=600.0) == 10
    assert ScheduledRun.objects.count() == 3


@pytest.mark.django_db
def test_old_claims_are_deleted():
    schedule.claim(name="job", interval=1, task_id="a", now=1.0)
    schedule.claim(name="job", interval=1, task_id="b", now=1.0 + schedule.KEEP_PERIODS + 2)
    assert list(ScheduledRun.objects.values_list("period", flat=True)) == [
        schedule.KEEP_PERIODS + 3
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_elect_exactly_one():
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(task_id: str) -> None:
        try:
            barrier.wait()
            if schedule.claim(name="race", interval=3600, task_id=task_id, now=7200.0):
                winners.append(task_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert list(ScheduledRun.objects.values_list("task_id", flat=True)) == winners
