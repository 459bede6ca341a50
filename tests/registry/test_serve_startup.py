"""What a newcomer meets running ``manage.py serve`` (``make run``): how it
starts, what it says, how Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import time

import requests

from tests.conftest import ADMIN, BerthServer


def test_ctrl_c_stops_at_once_with_a_client_connection_kept_open(tmp_path):
    """Ctrl-C reaches every process of the group at once. With a client's
    connection kept alive (docker keeps some), granian's worker used to get the
    terminal's SIGINT and its parent's SIGTERM together and hang until granian
    killed it 15 s later ("Killing worker-1 after it refused to gracefully stop")."""
    server = BerthServer(tmp_path / "data", role="all").start()
    try:
        client = requests.Session()  # its connection stays open, idle
        assert client.get(f"{server.url}/v2/", auth=ADMIN).status_code == 200
        started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGINT)
        assert server.proc.wait(timeout=60) == 0
        stopped_in = time.monotonic() - started
        log = server.log_path.read_text()
        assert "killing" not in log.lower(), log
        assert stopped_in < 12, f"{stopped_in:.1f} s"  # 17 s before; ~6 s now, on 2 busy cores
    finally:
        server.kill()
