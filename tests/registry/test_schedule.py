"""Scheduled jobs claim their period in the database: one run per period."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection

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
    done: list[str] = []
    barrier = threading.Barrier(8)

    def race(task_id: str) -> None:
        try:
            barrier.wait()
            # As the task's autoretry does: the test database (SQLite in memory)
            # answers "table is locked" to concurrent writers instead of waiting.
            for _ in range(200):
                try:
                    period = schedule.claim(name="race", interval=3600, task_id=task_id, now=7200.0)
                    break
                except OperationalError:
                    time.sleep(0.01)
            if period is not None:
                winners.append(task_id)
            done.append(task_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 8
    assert len(winners) == 1
    assert list(ScheduledRun.objects.values_list("task_id", flat=True)) == winners


def test_sysadmins_see_the_claims_in_the_admin(team):
    from django.test import Client

    from accounts.models import User

    schedule.claim(name="purge-stale-uploads", interval=60, task_id="task-42", now=600.0)
    schedule.finished(name="purge-stale-uploads", task_id="task-42")
    admin = Client()
    admin.force_login(User.objects.get(username="admin"))
    page = admin.get("/admin/registry/scheduledrun/")
    assert page.status_code == 200
    assert "task-42" in page.content.decode()
    padmin = Client()
    padmin.force_login(User.objects.get(username="padmin"))
    assert padmin.get("/admin/registry/scheduledrun/").status_code in (302, 403)
