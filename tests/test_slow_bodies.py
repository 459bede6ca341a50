"""Slow request bodies against the production web server (granian, as
``manage.py serve`` runs it): senders that announce a body and never finish it
must not stop ``/v2/`` or the probes, and must not keep a web thread past
BERTH_BODY_TIMEOUT (portal/bodies.py, docs/security.md)."""

from __future__ import annotations

import json
import selectors
import socket

import pytest
import requests

from tests.conftest import ADMIN, BerthServer
from tests.support import slow_senders, wait_until

pytestmark = pytest.mark.live


def answer(s: socket.socket) -> tuple[int, dict]:
    """The status and JSON body of the answer on ``s`` (sent with
    Connection: close or a Content-Length: read until the body is complete)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def answered(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets with an answer waiting to be read, without blocking."""
    with selectors.DefaultSelector() as selector:
        for s in sockets:
            selector.register(s, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout=0)]  # type: ignore[misc]


def test_v2_and_probes_answer_while_slow_bodies_hold_every_body_thread(tmp_path):
    """Twice as many senders as web threads, with a body timeout far beyond
    the test: three of the four threads may wait for bodies, the other senders
    are refused at once (503), and /v2/, /livez and a bodiless API call are
    served by the thread the cap keeps free."""
    env = {"BERTH_WEB_THREADS": "4", "BERTH_BODY_TIMEOUT": "3600"}
    server = BerthServer(tmp_path / "data", env=env).start()
    try:
        with slow_senders(server.addr, 8) as sockets:
            refused = wait_until(
                lambda: len(answered(sockets)) == 5 and answered(sockets),
                what="five of the eight senders refused",
            )
            assert [answer(s) for s in refused] == [
                (
                    503,
                    {
                        "errors": [
                            {
                                "code": "UNAVAILABLE",
                                "message": "too many requests are sending a body at once; retry",
                            }
                        ]
                    },
                )
            ] * 5
            assert requests.get(f"{server.url}/v2/", auth=ADMIN, timeout=60).status_code == 200
            assert requests.get(f"{server.url}/livez", timeout=60).status_code == 200
            r = requests.get(f"{server.url}/api/v2.0/projects", auth=ADMIN, timeout=60)
            assert r.status_code == 200
            # The three others still wait for their bodies: they hold the slots.
            r = requests.post(
                f"{server.url}/c/login", data={"principal": "admin", "password": "x"}, timeout=60
            )
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "1"
            assert answered([s for s in sockets if s not in refused]) == []
    finally:
        server.stop()


def test_a_stalled_body_gets_408_and_frees_its_thread(tmp_path):
    """One body thread, a 2 s body timeout: the stalled sender gets 408 while
    it keeps its connection open, and the next request with a body gets the
    thread and the slot back."""
    env = {"BERTH_WEB_THREADS": "2", "BERTH_WEB_BODY_THREADS": "1", "BERTH_BODY_TIMEOUT": "2"}
    server = BerthServer(tmp_path / "data", env=env).start()
    try:
        with slow_senders(server.addr, 1) as (stalled,):
            status, body = answer(stalled)  # after the 2 s timeout (60 s ceiling)
            assert status == 408
            assert body["errors"][0]["code"] == "REQUEST_TIMEOUT"
            r = requests.post(
                f"{server.url}/c/login",
                data={"principal": ADMIN[0], "password": ADMIN[1]},
                timeout=60,
            )
            assert r.status_code == 200, r.text
    finally:
        server.stop()
