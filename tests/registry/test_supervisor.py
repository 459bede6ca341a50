"""registry/supervisor.py in-process: the drain window (BERTH_DRAIN_SECONDS)
ends when its seconds are up, or earlier when a child exits. The live side,
readiness answering 503 while requests are served: test_serve.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import pytest

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


SERVE_S_LAST_STEP = """
import os, signal, subprocess, sys
from registry import supervisor
child = subprocess.Popen(["sleep", "600"])
print(child.pid, flush=True)
# What serve does after starting the parts: hold stop signals, then exec.
signal.pthread_sigmask(signal.SIG_BLOCK, supervisor.STOP_SIGNALS)
os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right in the gap
os.execv(sys.executable, [sys.executable, "-I", supervisor.__file__, f"web={child.pid}"])
"""


def test_a_ctrl_c_between_serve_and_the_supervisor_is_not_lost():
    """A Ctrl-C that arrives while serve hands over to the supervisor (exec) is
    held and then taken by the supervisor: it stops the parts and exits 0
    (before, it killed serve with SIGINT, exit -2, in the CI run of 2026-12-05)."""
    from tests.conftest import REPO_ROOT

    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_S_LAST_STEP],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    try:
        assert proc.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)  # stopped and reaped by the supervisor
    finally:
        proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)
