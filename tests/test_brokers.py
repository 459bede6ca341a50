"""Celery on real brokers (Debian's redis-server and rabbitmq-server): a live
``serve`` runs the jobs enqueued through each, and scheduled jobs fire once per
period when every replica runs the scheduler."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN, REPO_ROOT, BerthServer
from tests.support import wait_until

pytestmark = pytest.mark.live  # Berth, Celery workers, Redis and RabbitMQ

http = requests.Session()
http.auth = ADMIN


_redis_databases = itertools.count(10)


@pytest.fixture(params=["redis", "amqp"])
def broker(request) -> str:
    """A broker URL of each kind (the servers are shared by the session; each
    test gets a Redis database of its own)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"
    return request.getfixturevalue("rabbitmq_url")


def sqlite_url(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'berth.sqlite3'}"


def test_worker_runs_a_task_enqueued_through_the_broker(tmp_path, broker):
    server = BerthServer(
        tmp_path / "data",
        role="all",
        # The schedule does not fire during the test: the task is enqueued by hand.
        env={
            "CELERY_BROKER_URL": broker,
            "BERTH_UPLOAD_MAX_AGE": "1",
            "BERTH_UPLOAD_PURGE_INTERVAL": "3600",
        },
    ).start()
    try:
        server.create_projects(["jobs"])
        loc = server.url + http.post(f"{server.url}/v2/jobs/r/blobs/uploads/").headers["Location"]
        assert http.patch(loc, data=b"abandoned").status_code == 202
        uploads = server.data_dir / "registry" / "uploads"
        assert len(list(uploads.iterdir())) == 1
        # Ages the session past BERTH_UPLOAD_MAX_AGE (1 s); a slower machine only ages it more.
        time.sleep(1.5)
        server.manage(
            "shell",
            "-c",
            "from registry.tasks import purge_stale_uploads; purge_stale_uploads.delay()",
        )
        wait_until(lambda: http.get(loc).status_code != 204, interval=0.3, what="purged")
        assert http.get(loc).status_code == 404  # the session row is gone...
        assert list(uploads.iterdir()) == []  # ...and its bytes
    finally:
        server.stop()


RAN = re.compile(rb"purge-stale-uploads: period (\d+): running")
SKIPPED = re.compile(rb"purge-stale-uploads: skipped")


def test_scheduled_job_fires_once_per_period_with_two_schedulers(tmp_path, broker):
    """Two replicas, each running web, worker and scheduler, on one database and
    one broker: both schedulers send the job every period, it runs once. The
    test runs until three periods ran and both schedulers were seen sending,
    however long a loaded machine takes for that."""
    env = {
        "CELERY_BROKER_URL": broker,
        "BERTH_UPLOAD_PURGE_INTERVAL": "2",
        "BERTH_LOG_LEVEL": "INFO",
    }
    first = BerthServer(tmp_path / "one" / "data", role="all", env=env)
    second = BerthServer(tmp_path / "two" / "data", role="all", env=env)
    first.database_url = second.database_url = first.database_url or sqlite_url(tmp_path / "db")

    def logs() -> bytes:
        return first.log_path.read_bytes() + second.log_path.read_bytes()

    try:
        first.start()
        second.start()  # after the first has migrated
        wait_until(
            lambda: len(set(RAN.findall(logs()))) >= 3 and len(SKIPPED.findall(logs())) >= 2,
            timeout=300,
            interval=0.5,
            what="three periods ran, both schedulers sent",
        )
    finally:
        second.stop()
        first.stop()
    logs = logs()
    runs = Counter(int(p) for p in RAN.findall(logs))
    assert len(runs) >= 3, logs[-3000:]
    assert set(runs.values()) == {1}, runs  # never twice in one period
    assert len(SKIPPED.findall(logs)) >= 2  # both schedulers did send it


def _worker(tmp_path: Path, broker: str, name: str) -> subprocess.Popen[bytes]:
    """A Celery worker as Berth configures it (portal.celery: acks late, reject on
    worker lost, prefetch 1), with the test's probe task included."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "CELERY_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        BERTH_DATA_DIR=str(tmp_path / "data"),
        CELERY_BROKER_URL=broker,
        BERTH_TASK_VISIBILITY_TIMEOUT="3",
        CELERY_SKIP_CHECKS="1",
    )
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "threads",
         "--concurrency", "1", "--include", "tests.celery_probe", "--hostname", f"{name}@%h",
         "--loglevel", "INFO"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def test_a_worker_killed_mid_task_loses_nothing(tmp_path, broker):
    """kill -9 of the worker while a task runs: the task was not acknowledged, so
    the broker hands it to the next worker, which runs it to the end (RabbitMQ at
    once, Redis after BERTH_TASK_VISIBILITY_TIMEOUT). The task runs until the
    test releases it, after the kill."""
    from celery import Celery

    marks = tmp_path / "marks"
    release = tmp_path / "release"
    first = _worker(tmp_path, broker, "first")
    second = None
    try:
        client = Celery(broker=broker)
        client.send_task("tests.celery_probe.held_probe", args=[str(marks), str(release)])
        wait_until(
            lambda: marks.exists() and "start" in marks.read_text(),
            interval=0.2,
            what=lambda: (tmp_path / "first.log").read_text()[-3000:],
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert "done" not in marks.read_text()
        release.touch()
        second = _worker(tmp_path, broker, "second")
        wait_until(
            lambda: "done" in marks.read_text(),
            timeout=90,
            interval=0.2,
            what=lambda: (marks.read_text(), (tmp_path / "second.log").read_text()[-3000:]),
        )
        lines = marks.read_text().split()
        assert lines.count("start") == 2 and lines.count("done") == 1
        assert lines[-1] == str(second.pid)  # finished by the second worker
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
