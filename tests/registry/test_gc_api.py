"""Harbor's /system/gc and /system/purgeaudit: runs, history, log, stop,
schedules, one run at a time, bad input (registry/api/system.py)."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from registry.models import Blob, RepositoryBlob, SystemJob, SystemJobSchedule
from registry.services import systemjobs
from registry.storage import blob_store
from tests.roles import api

from .helpers import InProcess

GC = "/api/v2.0/system/gc"
PURGE = "/api/v2.0/system/purgeaudit"


@pytest.fixture
def sent(monkeypatch):
    """Jobs the API sends to Celery, run by the test when it chooses."""
    queue: list[int] = []
    monkeypatch.setattr(systemjobs, "_dispatch", queue.append)
    return queue


@pytest.fixture
def admin(v2, settings):
    settings.BERTH_GC_MIN_WINDOW = 0
    return api("admin")


def schedule(type_: str, cron: str = "", **parameters) -> str:
    return json.dumps({"schedule": {"type": type_, "cron": cron}, "parameters": parameters})


def post(client, path: str, body: str):
    return client.post(path, data=body, content_type="application/json")


def put(client, path: str, body: str):
    return client.put(path, data=body, content_type="application/json")


def orphan(v2, size: int = 700) -> str:
    digest = InProcess(v2).put_blob("app/a", os.urandom(size))
    then = timezone.now() - datetime.timedelta(hours=3)
    Blob.objects.update(created_at=then)
    RepositoryBlob.objects.update(last_seen=then)
    return digest


def test_a_manual_run_frees_bytes_and_reports_them(admin, v2, sent):
    digest = orphan(v2, 700)
    r = post(
        admin, f"{GC}/schedule", schedule("Manual", delete_untagged=True, workers=3, time_window=1)
    )
    assert r.status_code == 201, r.content
    job_id = int(r["Location"].rsplit("/", 1)[1])
    assert r["Location"] == f"{GC}/{job_id}"
    assert sent == [job_id]
    assert admin.get(f"{GC}/{job_id}").json()["job_status"] == "Pending"

    systemjobs.job_run(job_id)

    body = admin.get(f"{GC}/{job_id}").json()
    assert body["job_status"] == "Success"
    assert body["job_name"] == "GARBAGE_COLLECTION"
    assert body["job_kind"] == "MANUAL"
    assert json.loads(body["job_parameters"]) == {
        "delete_untagged": True,
        "dry_run": False,
        "time_window": 1,
        "workers": 3,
    }
    job = SystemJob.objects.get(pk=job_id)
    assert (job.deleted_blobs, job.freed_bytes) == (1, 700)
    assert not blob_store().blob_exists(digest)
    log = admin.get(f"{GC}/{job_id}/log")
    assert log.status_code == 200
    assert log["Content-Type"].startswith("text/plain")
    assert "700 bytes freed" in log.content.decode()
    history = admin.get(f"{GC}?page=1&page_size=10")
    assert history["X-Total-Count"] == "1"
    assert [h["id"] for h in history.json()] == [job_id]


def test_a_dry_run_frees_nothing(admin, v2, sent):
    digest = orphan(v2, 300)
    r = post(admin, f"{GC}/schedule", schedule("Manual", dry_run=True, time_window=1))
    job_id = int(r["Location"].rsplit("/", 1)[1])
    systemjobs.job_run(job_id)
    job = SystemJob.objects.get(pk=job_id)
    assert (job.status, job.dry_run, job.freed_bytes) == ("Success", True, 300)
    assert blob_store().blob_exists(digest)
    assert "would delete" in admin.get(f"{GC}/{job_id}/log").content.decode()


def test_one_run_at_a_time_and_stop(admin, sent):
    first = post(admin, f"{GC}/schedule", schedule("Manual"))
    assert first.status_code == 201
    second = post(admin, f"{GC}/schedule", schedule("Manual"))
    assert second.status_code == 409
    assert second.json()["errors"][0]["code"] == "CONFLICT"
    job_id = int(first["Location"].rsplit("/", 1)[1])
    assert admin.put(f"{GC}/{job_id}").status_code == 200
    assert admin.get(f"{GC}/{job_id}").json()["job_status"] == "Stopped"
    assert systemjobs.job_run(job_id) is None  # the worker finds it stopped
    assert post(admin, f"{GC}/schedule", schedule("Manual")).status_code == 201


def test_a_running_gc_stops_at_its_next_batch(admin, v2, sent):
    orphan(v2)
    r = post(admin, f"{GC}/schedule", schedule("Manual", time_window=1))
    job_id = int(r["Location"].rsplit("/", 1)[1])
    SystemJob.objects.filter(pk=job_id).update(status="Running", stop_requested=True)
    systemjobs.job_run(job_id)
    assert SystemJob.objects.get(pk=job_id).status == "Stopped"
    assert Blob.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        schedule("Manual", workers=0),
        schedule("Manual", workers=11),
        schedule("Manual", workers="many"),
        schedule("Manual", delete_untagged="maybe"),
        schedule("Custom", "0 61 * * * *"),
        schedule("Custom", "not a cron"),
        schedule("Custom", "* * * * *"),
        schedule("Custom", ""),
        schedule("Custom", "*/5 * * * * *"),
        schedule("Fortnightly"),
        json.dumps({"schedule": "Daily"}),
    ],
)
def test_bad_input_is_a_400(admin, sent, body):
    r = post(admin, f"{GC}/schedule", body)
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert not SystemJob.objects.exists()
    assert not SystemJobSchedule.objects.exists()


def test_schedules_as_harbor_shows_them(admin, sent):
    r = admin.get(f"{GC}/schedule")
    assert r.status_code == 200
    assert r.json()["schedule"]["type"] == "None"
    r = post(admin, f"{GC}/schedule", schedule("Daily", "", delete_untagged=True, workers=2))
    assert r.status_code == 201
    body = admin.get(f"{GC}/schedule").json()
    assert body["schedule"]["type"] == "Daily"
    assert body["schedule"]["cron"] == "0 0 0 * * *"
    assert body["schedule"]["next_scheduled_time"].endswith("T00:00:00Z")
    assert json.loads(body["job_parameters"])["workers"] == 2
    assert put(admin, f"{GC}/schedule", schedule("Custom", "0 30 2 * * 1")).status_code == 200
    body = admin.get(f"{GC}/schedule").json()
    assert (body["schedule"]["type"], body["schedule"]["cron"]) == ("Custom", "0 30 2 * * 1")
    assert put(admin, f"{GC}/schedule", schedule("Manual")).status_code == 400
    assert put(admin, f"{GC}/schedule", schedule("None")).status_code == 200
    assert admin.get(f"{GC}/schedule").json()["schedule"]["type"] == "None"
    assert sent == []


def test_the_tick_starts_what_is_due_once(admin, sent):
    put(admin, f"{GC}/schedule", schedule("Custom", "0 15 * * * *", workers=4))
    SystemJobSchedule.objects.update_or_create(
        kind="purge_audit", defaults={"type": "Hourly", "cron": "0 0 * * * *", "parameters": {}}
    )
    at = datetime.datetime(2026, 3, 2, 10, 15, 0, tzinfo=datetime.UTC)
    started = systemjobs.schedules_tick(task_id="t1", now=at)
    assert [(j.kind, j.trigger, j.parameters["workers"]) for j in started] == [
        ("gc", "Schedule", 4)
    ]
    assert systemjobs.schedules_tick(task_id="t2", now=at) == []  # the minute is claimed
    later = systemjobs.schedules_tick(task_id="t3", now=at.replace(minute=16))
    assert later == []
    on_the_hour = systemjobs.schedules_tick(task_id="t4", now=at.replace(hour=11, minute=0))
    assert [j.kind for j in on_the_hour] == ["purge_audit"]
    assert admin.get(f"{GC}/{started[0].pk}").json()["job_kind"] == "SCHEDULE"


@pytest.mark.parametrize("path", [GC, f"{GC}/schedule", PURGE, f"{PURGE}/schedule"])
def test_only_system_administrators(team, path):
    assert api("padmin").get(path).status_code == 403
    assert api().get(path).status_code == 401
    assert post(api("padmin"), f"{GC}/schedule", schedule("Manual")).status_code == 403


def test_the_audit_purge_rides_the_same_machine(admin, sent):
    old = timezone.now() - datetime.timedelta(hours=300)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                occurred_at=old, username="u", operation=op, resource_type="artifact", resource="x"
            )
            for op in ("create", "delete", "pull", "pull")
        ]
        + [
            AuditEvent(
                occurred_at=timezone.now(),
                username="u",
                operation="pull",
                resource_type="artifact",
                resource="x",
            )
        ]
    )
    before = AuditEvent.objects.count()
    r = post(
        admin,
        f"{PURGE}/schedule",
        schedule(
            "Manual", audit_retention_hour=168, include_event_types="pull_artifact,create_artifact"
        ),
    )
    assert r.status_code == 201, r.content
    job_id = int(r["Location"].rsplit("/", 1)[1])
    assert r["Location"] == f"{PURGE}/{job_id}"
    systemjobs.job_run(job_id)
    body = admin.get(f"{PURGE}/{job_id}").json()
    assert (body["job_status"], body["job_name"]) == ("Success", "PURGE_AUDIT_LOG")
    assert AuditEvent.objects.count() == before - 3
    assert "purged 3" in admin.get(f"{PURGE}/{job_id}/log").content.decode()
    assert admin.get(PURGE).json()[0]["id"] == job_id


def test_a_run_no_worker_touches_stops_blocking_the_next(admin, sent, settings):
    settings.BERTH_SYSTEM_JOB_STALE = 3600
    lost = SystemJob.objects.create(kind="gc", status="Running")
    assert post(admin, f"{GC}/schedule", schedule("Manual")).status_code == 409
    SystemJob.objects.filter(pk=lost.pk).update(
        updated_at=timezone.now() - datetime.timedelta(hours=2)
    )
    r = post(admin, f"{GC}/schedule", schedule("Manual"))
    assert r.status_code == 201
    lost.refresh_from_db()
    assert lost.status == "Error"
    assert "abandoned" in lost.log


def test_an_abandoned_run_that_wakes_up_stops_at_its_next_batch(admin, v2, sent, monkeypatch):
    """Given up while its worker was stalled, it must not collect beside the
    next run: it stops at its next batch and keeps its Error."""
    orphan(v2)
    r = post(admin, f"{GC}/schedule", schedule("Manual", time_window=1))
    job_id = int(r["Location"].rsplit("/", 1)[1])
    real_collect = systemjobs.gc.collect

    def stalled(**kw):
        SystemJob.objects.filter(pk=job_id).update(status="Error")  # abandoned meanwhile
        return real_collect(**kw)

    monkeypatch.setattr(systemjobs.gc, "collect", stalled)
    systemjobs.job_run(job_id)
    assert SystemJob.objects.get(pk=job_id).status == "Error"
    assert Blob.objects.count() == 1  # it swept nothing
