"""The admin's garbage-collection page: history with freed bytes, run, dry
run and stop buttons, for system administrators only."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from registry.models import SystemJob
from registry.services import systemjobs

JOBS = "/admin/registry/systemjob/"
RUN = JOBS + "run/"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    queue: list[int] = []
    monkeypatch.setattr(systemjobs, "_dispatch", queue.append)
    return queue


def as_user(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def test_history_shows_freed_bytes_and_the_buttons(team):
    SystemJob.objects.create(
        kind="gc", status="Success", freed_bytes=5 * 1024 * 1024, deleted_blobs=7
    )
    page = as_user("admin").get(JOBS)
    assert page.status_code == 200
    text = page.content.decode()
    assert "5.0\xa0MB (5242880 B)" in text
    assert "Run garbage collection" in text
    assert "Dry run" in text


def test_run_and_dry_run_buttons_start_runs(team, sent):
    admin = as_user("admin")
    r = admin.post(RUN, {"kind": "gc", "delete_untagged": "on", "workers": "4", "run": ""})
    assert r.status_code == 302
    job = SystemJob.objects.get()
    assert (job.parameters["workers"], job.parameters["delete_untagged"], job.dry_run) == (
        4,
        True,
        False,
    )
    assert sent == [job.pk]
    # One at a time: a second is refused with a message, nothing started.
    r = admin.post(RUN, {"kind": "gc", "workers": "1", "dry_run": ""}, follow=True)
    assert "already in progress" in r.content.decode()
    assert SystemJob.objects.count() == 1
    r = admin.post(f"{JOBS}{job.pk}/stop/", follow=True)
    assert r.status_code == 200
    assert SystemJob.objects.get(pk=job.pk).status == "Stopped"
    admin.post(RUN, {"kind": "gc", "workers": "2", "dry_run": ""})
    assert SystemJob.objects.latest("id").dry_run is True


def test_bad_workers_are_refused(team, sent):
    r = as_user("admin").post(RUN, {"kind": "gc", "workers": "11"}, follow=True)
    assert "orkers must be between 1 and 10" in r.content.decode()
    assert not SystemJob.objects.exists()


def test_a_running_job_shows_a_stop_button(team):
    job = SystemJob.objects.create(kind="gc", status="Running", log="marked 3 blobs\n")
    page = as_user("admin").get(f"{JOBS}{job.pk}/change/").content.decode()
    assert f"{JOBS}{job.pk}/stop/" in page
    assert "marked 3 blobs" in page


@pytest.mark.parametrize("user", ["padmin", "dev"])
def test_only_system_administrators(team, sent, user):
    client = as_user(user)
    assert client.get(JOBS).status_code in (302, 403)
    assert client.post(RUN, {"kind": "gc"}).status_code in (302, 403)
    assert not SystemJob.objects.exists()
