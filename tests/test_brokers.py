"""Celery on real brokers (Debian's redis-server and rabbitmq-server): a live
``serve`` runs the jobs enqueued through each, and scheduled jobs fire once per
period when every replica runs the scheduler."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN, BerthServer

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
        time.sleep(1.5)  # older than BERTH_UPLOAD_MAX_AGE
        server.manage(
            "shell",
            "-c",
            "from registry.tasks import purge_stale_uploads; purge_stale_uploads.delay()",
        )
        deadline = time.monotonic() + 60
        while http.get(loc).status_code == 204 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert http.get(loc).status_code == 404  # the session row is gone...
        assert list(uploads.iterdir()) == []  # ...and its bytes
    finally:
        server.stop()


RAN = re.compile(rb"purge-stale-uploads: period (\d+): running")
SKIPPED = re.compile(rb"purge-stale-uploads: skipped")


def test_scheduled_job_fires_once_per_period_with_two_schedulers(tmp_path, broker):
    """Two replicas, each running web, worker and scheduler, on one database and
    one broker: both schedulers send the job every period, it runs once."""
    env = {
        "CELERY_BROKER_URL": broker,
        "BERTH_UPLOAD_PURGE_INTERVAL": "2",
        "BERTH_LOG_LEVEL": "INFO",
    }
    first = BerthServer(tmp_path / "one" / "data", role="all", env=env)
    second = BerthServer(tmp_path / "two" / "data", role="all", env=env)
    first.database_url = second.database_url = first.database_url or sqlite_url(tmp_path / "db")
    try:
        first.start()
        second.start()  # after the first has migrated
        time.sleep(13)
    finally:
        second.stop()
        first.stop()
    logs = first.log_path.read_bytes() + second.log_path.read_bytes()
    runs = Counter(int(p) for p in RAN.findall(logs))
    assert len(runs) >= 3, logs[-3000:]
    assert set(runs.values()) == {1}, runs  # never twice in one period
    assert len(SKIPPED.findall(logs)) >= 2  # both schedulers did send it
