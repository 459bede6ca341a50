"""What a newcomer meets running ``manage.py serve`` (``make run``): how it
starts, what it says, how Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import ADMIN, REPO_ROOT, BerthServer

pytestmark = pytest.mark.live  # each test starts manage.py serve


def test_ctrl_c_stops_at_once_with_a_client_connection_kept_open(tmp_path):
    """Ctrl-C reaches every process of the group at once. With a client's
    connection kept alive (docker keeps some), granian's worker used to get the
    terminal's SIGINT and its parent's SIGTERM together and hang until granian
    killed it 15 s later (``--workers-kill-timeout``).

    What is asserted is what the user sees: a prompt stop, status 0, and no part
    the supervisor had to kill. Not granian's own "Killing worker-1 after it
    refused to gracefully stop" line: granian 2.8.9 also prints it, harmlessly,
    when a worker that did stop is still exiting 1 ms after its pipe closed (seen
    on a loaded machine: the line 0.2 s after the stop began, then "Stopped")."""
    server = BerthServer(tmp_path / "data", role="all").start()
    try:
        client = requests.Session()  # its connection stays open, idle
        assert client.get(f"{server.url}/v2/", auth=ADMIN).status_code == 200
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGINT)
        assert server.proc.wait(timeout=60) == 0
        stopped_in = time.monotonic() - started
        log = server.log_path.read_text()
        assert "did not stop within" not in log, log  # registry/supervisor.py
        # 17 s before (granian's kill timeout, 15 s, then the rest); ~2-6 s now
        # on 2 busy cores.
        assert stopped_in < 12, f"{stopped_in:.1f} s\n{log}"
    finally:
        server.kill()


def wait_for_line(server: BerthServer, text: str, timeout: float = 60) -> str:
    """The server's log once it holds ``text`` (bounded polling)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_path.read_text() if server.log_path.exists() else ""
        if text in log:
            return log
        assert server.proc is None or server.proc.poll() is None, log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log: {log[-3000:]}")


def start(server: BerthServer) -> BerthServer:
    """``manage.py serve`` without waiting for a login to work (BerthServer.start
    logs in with ADMIN_PASSWORD)."""
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--role", server.role, "--addr", server.addr],
        cwd=REPO_ROOT,
        env=server.env,
        stdout=open(server.log_path, "ab"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return server


def test_start_up_says_where_to_go_and_keeps_the_generated_password_out_of_the_log(tmp_path):
    env = {"BERTH_ADMIN_PASSWORD": "", "BERTH_LOG_LEVEL": "INFO"}  # as make run has them
    server = start(BerthServer(tmp_path / "data", role="all", env=env))
    try:
        log = wait_for_line(server, "  API:")
        password_file = server.data_dir / "initial-admin-password"
        assert f"Berth is running at http://127.0.0.1:{server.port} " in log
        assert f"  data:     {server.data_dir}\n" in log
        assert f"password generated, in {password_file}\n" in log
        assert f"docker login 127.0.0.1:{server.port} -u admin\n" in log
        assert f"http://127.0.0.1:{server.port}/api/v2.0/projects" in log
        password = password_file.read_text().strip()
        r = requests.get(f"{server.url}/api/v2.0/projects", auth=("admin", password), timeout=10)
        assert r.status_code == 200
        wait_for_line(server, "ready.")  # the Celery worker, started after the summary
        log = server.log_path.read_text()
        assert password not in log
        # What used to bury the summary: Celery's banner and task list, its
        # warnings about root and about the broker URL, granian's thread advice.
        for noise in (
            "--- ***** ---",
            "[tasks]",
            "superuser privileges",
            "No hostname",
            "quite high",
        ):
            assert noise not in log, noise
    finally:
        server.kill()


def test_weak_admin_password_is_one_line_and_a_failed_start(tmp_path):
    server = BerthServer(tmp_path / "data", env={"BERTH_ADMIN_PASSWORD": "weak"})
    server.data_dir.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "manage.py", "serve", "--addr", server.addr],
        cwd=REPO_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "CommandError: BERTH_ADMIN_PASSWORD must have 8-128 characters, with at least "
        "one upper-case letter, one lower-case letter and one digit"
    ]
    with socket.socket() as s:  # nothing of it left listening
        assert s.connect_ex(("127.0.0.1", server.port)) != 0


def test_another_admin_password_on_a_later_start_is_reported_as_ignored(tmp_path):
    server = BerthServer(tmp_path / "data").start()
    server.stop()
    warning = "BERTH_ADMIN_PASSWORD is ignored: the administrator 'admin' already exists"
    assert warning not in server.log_path.read_text()
    server.extra_env["BERTH_ADMIN_PASSWORD"] = "Another-Passw0rd"
    server.start()  # logs in with the first password: still the admin's
    try:
        log = wait_for_line(server, warning)
        assert "python manage.py changepassword admin" in log
        assert "Another-Passw0rd" not in log
        r = requests.get(f"{server.url}/api/v2.0/projects", auth=("admin", "Another-Passw0rd"))
        assert r.status_code == 401
    finally:
        server.stop()
