"""Small helpers for every test module: a free port, waiting for a state,
slow senders.

Waiting: a test that needs something to have happened polls for the state it
can observe (a file, a status code, a log line, a lock held) with
:func:`wait_until`, never sleeps for a window it hopes is long enough. The
timeout is a ceiling against hangs, far above what a loaded machine takes; the
test's outcome never depends on it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def starting_a_server(what: str) -> None:
    """Called by every server a test starts: under ``make test-fast``
    (BERTH_TEST_FAST=1), which leaves out tests marked ``live``, a test that
    gets here lacks its mark."""
    if os.environ.get("BERTH_TEST_FAST") == "1":
        raise RuntimeError(f"{what}: this test starts a server, so it must be marked live")


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float = 60,
    interval: float = 0.05,
    what: str | Callable[[], object] = "",
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.
    Raises AssertionError after ``timeout`` seconds, naming ``what`` (or what
    it returns when callable: a log's tail, read only then)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not reached within {timeout:.0f} s: {said or probe}")
        time.sleep(interval)


# A slow sender (issue 13): a login form that announces 100 kB and sends 11 bytes.
SLOW_HEAD = (
    "POST /c/login HTTP/1.1\r\nHost: berth\r\nContent-Length: 100000\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
)


@contextmanager
def slow_senders(addr: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent a head and 11 bytes of the body,
    and then nothing, held open until the block ends."""
    host, port = addr.split(":")
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            s = stack.enter_context(socket.create_connection((host, int(port)), timeout=60))
            s.sendall(SLOW_HEAD.encode() + b"principal=a")
            sockets.append(s)
        yield sockets
