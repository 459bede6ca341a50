"""Live status of long-running jobs (accounts/livestatus.py): the JSON the
job pages poll — who may read it, its shape, its query counts — and the pages'
live region and markers. The real-browser check is in
tests/portal/test_browser_live_status.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from registry.models import SystemJob
from replication.models import Execution, Policy, Status, Task
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = "/admin/registry/systemjob/"
EXECUTIONS = "/admin/replication/execution/"


def as_user(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def running_gc(**fields) -> SystemJob:
    return SystemJob.objects.create(
        kind="gc",
        status="Running",
        freed_bytes=3 * 1024 * 1024,
        deleted_blobs=4,
        deleted_manifests=2,
        log="x" * 10_000 + "\nswept blob sha256:abc\n",
        **fields,
    )


def execution(status: str = Status.RUNNING, **counts) -> Execution:
    policy = Policy.objects.get_or_create(name="mirror")[0]
    return Execution.objects.create(policy=policy, status=status, **counts)


def test_a_running_gc_reports_status_counts_and_the_end_of_its_log(team):
    job = running_gc()
    r = as_user("admin").get(f"{JOBS}{job.pk}/live/")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    assert "no-store" in r["Cache-Control"]
    body = r.json()
    assert set(body) == {"id", "status", "active", "progress", "cells", "log_tail"}
    assert (body["id"], body["status"], body["active"]) == (job.pk, "Running", True)
    assert body["progress"] == "3.0\xa0MB freed, 4 blobs and 2 manifests deleted"
    assert body["cells"]["status"] == "Running"
    assert body["cells"]["freed"] == "3.0\xa0MB (3145728 B)"
    assert body["cells"]["deleted_blobs"] == "4"
    assert body["cells"]["finished_at"] == "-"
    # The tail, not the whole log.
    assert body["log_tail"].endswith("swept blob sha256:abc\n")
    assert len(body["log_tail"]) == 4000

    SystemJob.objects.filter(pk=job.pk).update(status="Success", deleted_blobs=9)
    body = as_user("admin").get(f"{JOBS}{job.pk}/live/").json()
    assert (body["status"], body["active"], body["cells"]["deleted_blobs"]) == (
        "Success",
        False,
        "9",
    )


def test_the_purge_reports_events_deleted(team):
    job = SystemJob.objects.create(kind="purge_audit", status="Running", deleted_events=1)
    body = as_user("admin").get(f"{JOBS}{job.pk}/live/").json()
    assert body["progress"] == "1 audit event deleted"


def test_the_list_endpoint_answers_the_asked_rows_only(team):
    a, b = running_gc(), SystemJob.objects.create(kind="purge_audit", status="Success")
    r = as_user("admin").get(f"{JOBS}live/?ids={a.pk},{b.pk},999999")
    assert r.status_code == 200
    jobs = {job["id"]: job for job in r.json()["jobs"]}
    assert set(jobs) == {a.pk, b.pk}
    assert (jobs[a.pk]["active"], jobs[b.pk]["active"]) == (True, False)
    assert "log_tail" not in jobs[a.pk]
    assert as_user("admin").get(f"{JOBS}live/").json() == {"jobs": []}


@pytest.mark.parametrize("ids", ["1,x", "1;2", ",".join(str(n) for n in range(101))])
def test_bad_ids_are_a_clear_400(team, ids):
    r = as_user("admin").get(f"{JOBS}live/", {"ids": ids})
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"


def test_only_sysadmins_read_the_live_status(team):
    job = running_gc()
    run = execution()
    for url in (
        f"{JOBS}{job.pk}/live/",
        f"{JOBS}live/?ids={job.pk}",
        f"{EXECUTIONS}{run.pk}/live/",
        f"{EXECUTIONS}live/?ids={run.pk}",
    ):
        for who in ("padmin", "dev", "outsider"):
            client = Client()
            assert client.login(username=who, password=PASSWORD)
            r = client.get(url)
            assert r.status_code == 403, (who, url)
            assert b"swept" not in r.content
        r = Client().get(url)  # a visitor is sent to sign in, and sees nothing
        assert r.status_code == 302 and "/login/" in r["Location"], url
    assert as_user("admin").get(f"{JOBS}999999/live/").status_code == 404
    assert as_user("admin").get(f"{JOBS}nope/live/").status_code == 404


def test_an_execution_reports_tasks_done_and_the_latest_task_log(team):
    run = execution(total=4, succeeded=2, failed=1)
    Task.objects.create(execution=run, src_repository="a", dst_repository="a", log="first\n")
    Task.objects.create(execution=run, src_repository="b", dst_repository="b", log="copying b\n")
    Task.objects.create(execution=run, src_repository="c", dst_repository="c")
    body = as_user("admin").get(f"{EXECUTIONS}{run.pk}/live/").json()
    assert (body["status"], body["active"]) == ("InProgress", True)
    assert body["progress"] == "3 of 4 tasks done, 1 failed"
    assert body["cells"]["succeeded"] == "2"
    assert body["log_tail"] == "copying b\n"
    Execution.objects.filter(pk=run.pk).update(status=Status.SUCCEEDED, succeeded=3)
    body = as_user("admin").get(f"{EXECUTIONS}{run.pk}/live/").json()
    assert (body["status"], body["active"], body["progress"]) == (
        "Succeed",
        False,
        "4 of 4 tasks done, 1 failed",
    )


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_query_counts_are_pinned_whatever_the_number_of_jobs(team):
    admin = as_user("admin")
    jobs = [running_gc()] + [
        SystemJob.objects.create(kind="purge_audit", status="Success") for _ in range(5)
    ]
    runs = [execution(total=2) for _ in range(5)]
    for run in runs:
        Task.objects.create(execution=run, src_repository="a", dst_repository="a", log="l\n")
    admin.get(f"{JOBS}live/")  # the session warmed up
    # The session and the user, then one query for the rows.
    assert count_queries(admin, f"{JOBS}{jobs[0].pk}/live/") == 3
    assert count_queries(admin, f"{JOBS}live/?ids={jobs[0].pk}") == 3
    assert count_queries(admin, f"{JOBS}live/?ids=" + ",".join(str(j.pk) for j in jobs)) == 3
    assert count_queries(admin, f"{EXECUTIONS}{runs[0].pk}/live/") == 3
    many = ",".join(str(r.pk) for r in runs)
    assert count_queries(admin, f"{EXECUTIONS}live/?ids={many}") == 3


def test_pages_carry_the_live_region_and_row_markers(team):
    job = running_gc()
    done = SystemJob.objects.create(kind="gc", status="Success")
    admin = as_user("admin")
    page = admin.get(JOBS).content.decode()
    assert 'id="berth-live"' in page and 'aria-live="polite"' in page
    assert f'data-live-id="{job.pk}" data-live-status="Running" data-live-active' in page
    assert f'data-live-id="{done.pk}" data-live-status="Success">' in page
    page = admin.get(f"{JOBS}{job.pk}/change/").content.decode()
    assert f'data-url="/admin/registry/systemjob/{job.pk}/live/" data-active' in page
    assert "swept blob sha256:abc" in page
    page = admin.get(f"{JOBS}{done.pk}/change/").content.decode()
    # An ended job: shown, but no polling.
    assert f'data-url="/admin/registry/systemjob/{done.pk}/live/" aria-labelledby' in page
    run = execution()
    page = admin.get(f"{EXECUTIONS}{run.pk}/change/").content.decode()
    assert f'data-url="/admin/replication/execution/{run.pk}/live/" data-active' in page
    assert "0 of 0 tasks done, 0 failed" in page


def test_the_live_status_speaks_the_portals_language(team):
    run = execution(total=2, succeeded=1)
    admin = as_user("admin")
    body = admin.get(f"{EXECUTIONS}{run.pk}/live/", HTTP_ACCEPT_LANGUAGE="zh-CN").json()
    assert body["progress"] == "已完成 1/2 个任务，0 个失败"  # noqa: RUF001 - the Chinese comma
    page = admin.get(f"{EXECUTIONS}{run.pk}/change/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert "实时状态" in page.content.decode()
