"""registry/supervisor.py in-process: the drain window (BERTH_DRAIN_SECONDS)
ends when its seconds are up, or earlier when a child exits. The live side,
readiness answering 503 while requests are served: test_serve.py."""

from __future__ import annotations

import subprocess
import threading
import time

from registry import supervisor


def test_the_drain_window_lasts_its_seconds_while_the_children_run():
    child = subprocess.Popen(["sleep", "600"])
    try:
        started = time.monotonic()
        supervisor._wait_for_balancers({"web": child.pid}, 0.3)
        # A lower bound only: it holds on a machine of any speed.
        assert time.monotonic() - started >= 0.3
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_the_drain_window_ends_early_when_a_child_exits():
    child = subprocess.Popen(["sleep", "600"])
    children = {"web": child.pid}
    ended = threading.Event()

    def drain() -> None:
        supervisor._wait_for_balancers(children, 3600)
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    assert not ended.is_set()
    child.terminate()
    assert ended.wait(60)
    assert children == {}  # reaped, so not signalled again
