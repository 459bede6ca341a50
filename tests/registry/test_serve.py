"""``manage.py serve``: all roles together, jobs really run, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN, REPO_ROOT, BerthServer
from tests.support import wait_until

from .helpers import sha256

http = requests.Session()
http.auth = ADMIN


def descendants(pid: int) -> set[int]:
    """Every process of the session ``pid`` leads (granian's worker has a
    process group of its own: portal.wsgi.served_application)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid="], capture_output=True, text=True).stdout
    return {int(p) for p, g in (line.split() for line in out.splitlines()) if int(g) == pid}


@pytest.mark.live
def test_serve_all_runs_scheduled_jobs_and_stops_on_ctrl_c(tmp_path):
    server = BerthServer(
        tmp_path / "data",
        role="all",
        env={"BERTH_UPLOAD_MAX_AGE": "1", "BERTH_UPLOAD_PURGE_INTERVAL": "1"},
    ).start()
    server.create_projects(["jobs"])
    try:
        assert len(descendants(server.proc.pid)) >= 4  # supervisor, web, worker, beat
        loc = server.url + http.post(f"{server.url}/v2/jobs/r/blobs/uploads/").headers["Location"]
        http.patch(loc, data=b"abandoned")
        deadline = time.monotonic() + 60
        while http.get(loc).status_code == 204 and time.monotonic() < deadline:
            time.sleep(0.5)
        # The scheduler queued the purge, the worker ran it through the file broker.
        assert http.get(loc).status_code == 404
        assert list((server.data_dir / "registry" / "uploads").iterdir()) == []
        os.killpg(server.proc.pid, signal.SIGINT)
        assert server.proc.wait(timeout=30) == 0
        wait_until(lambda: descendants(server.proc.pid) == set(), what="no part left")
    finally:
        server.kill()


@pytest.mark.live
def test_upload_session_survives_a_restart(tmp_path):
    server = BerthServer(tmp_path / "data").start()
    server.create_projects(["restart"])
    try:
        data = os.urandom(300_000)
        loc = (
            server.url + http.post(f"{server.url}/v2/restart/r/blobs/uploads/").headers["Location"]
        )
        assert http.patch(loc, data=data[:100_000]).status_code == 202
        server.stop()
        server.start()
        assert http.get(loc).headers["Range"] == "0-99999"
        assert http.patch(loc, data=data[100_000:200_000]).status_code == 202
        r = http.put(f"{loc}?digest={sha256(data)}", data=data[200_000:])
        assert r.status_code == 201, r.text
        assert http.get(f"{server.url}/v2/restart/r/blobs/{sha256(data)}").content == data
    finally:
        server.stop()


@pytest.mark.live
def test_sigterm_drains_in_flight_downloads_and_refuses_new_connections(tmp_path):
    """Graceful drain: after SIGTERM to ``serve`` alone (as Kubernetes or systemd
    sends it), a blob download in flight runs to its end, new connections are
    refused, the drain file for readiness exists meanwhile, and serve exits 0."""
    server = BerthServer(tmp_path / "data").start()
    server.create_projects(["drain"])
    data = os.urandom(64 << 20)  # far more than the socket buffers hold
    digest = sha256(data)
    try:
        loc = server.url + http.post(f"{server.url}/v2/drain/r/blobs/uploads/").headers["Location"]
        assert http.put(loc, params={"digest": digest}, data=data).status_code == 201
        download = http.get(f"{server.url}/v2/drain/r/blobs/{digest}", stream=True)
        assert download.status_code == 200
        chunks = download.iter_content(1 << 20)
        received = [next(chunks)]  # in flight: the rest still to come

        server.proc.send_signal(signal.SIGTERM)
        drain_files = list(server.data_dir.glob("draining-*"))

        def refused() -> bool:
            nonlocal drain_files
            drain_files = drain_files or list(server.data_dir.glob("draining-*"))
            try:
                requests.get(f"{server.url}/v2/", timeout=30)
            except requests.ConnectionError:
                return True
            return False

        wait_until(refused, what="the listener is gone")
        assert drain_files  # readiness would answer 503 (kit.health, BERTH_DRAIN_FILE)

        received.extend(chunks)
        assert sha256(b"".join(received)) == digest
        assert server.proc.wait(timeout=30) == 0
        assert list(server.data_dir.glob("draining-*")) == []
    finally:
        server.kill()


def children(pid: int) -> dict[int, str]:
    """The direct children of ``pid``: {pid: command line}."""
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return {
        int(p): args for p, _, args in (line.strip().partition(" ") for line in out.splitlines())
    }


@pytest.mark.live
def test_drain_seconds_keep_serving_while_readiness_says_503(tmp_path):
    """BERTH_DRAIN_SECONDS: after SIGTERM, /readyz answers 503 while requests are
    still served, so a balancer takes the replica out first; when the window
    ends, the server stops and exits 0. The window is an hour, so no machine is
    too slow to see it; the test ends it the other way the supervisor knows (a
    child exits, registry/supervisor.py). That a window ends by itself:
    tests/registry/test_supervisor.py."""
    server = BerthServer(tmp_path / "data", env={"BERTH_DRAIN_SECONDS": "3600"}).start()
    try:
        assert requests.get(f"{server.url}/readyz", timeout=30).status_code == 200
        server.proc.send_signal(signal.SIGTERM)
        readyz = f"{server.url}/readyz"
        wait_until(lambda: requests.get(readyz, timeout=30).status_code == 503, what="503")
        assert requests.get(readyz, timeout=30).json()["status"] == "draining"
        # Still serving during the window.
        assert requests.get(f"{server.url}/v2/", timeout=30).status_code == 401
        assert server.proc.poll() is None
        web_server = "kit.web"  # granian, started by serve (kit/web.py)
        [web] = [pid for pid, args in children(server.proc.pid).items() if web_server in args]
        os.kill(web, signal.SIGTERM)  # ends the window
        assert server.proc.wait(timeout=60) == 0
        assert list(server.data_dir.glob("draining-*")) == []
    finally:
        server.kill()


@pytest.mark.live
def test_no_request_meets_a_database_being_migrated(tmp_path):
    """The web child starts while serve migrates a fresh database: from the first
    accepted connection on, answers are those of a ready server, never a 5xx."""
    server = BerthServer(tmp_path / "data")
    server.data_dir.mkdir(parents=True)
    log = open(server.log_path, "ab")  # noqa: SIM115 - closed below
    server.proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--addr", server.addr],
        cwd=REPO_ROOT,
        env=server.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    answers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 200 not in answers[-1:]:
            try:
                answers.append(
                    requests.get(f"{server.url}/v2/", timeout=30, auth=ADMIN).status_code
                )
            except requests.ConnectionError:
                time.sleep(0.01)
        assert answers and answers[-1] == 200, server.log_path.read_text()[-3000:]
        assert set(answers) == {200}  # admin's Basic login worked on the first answer
        assert not list(server.data_dir.glob("schema-gate-*"))
    finally:
        server.kill()
        log.close()


def test_the_web_worker_waits_for_the_schema_gate(tmp_path, monkeypatch):
    from portal.wsgi import wait_for_schema

    gate = tmp_path / "schema-gate-1"
    gate.touch()
    monkeypatch.setenv("BERTH_SCHEMA_GATE", str(gate))
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (wait_for_schema(), done.set()))
    waiter.start()
    assert not done.wait(0.3)
    gate.unlink()
    assert done.wait(5)
    waiter.join()
