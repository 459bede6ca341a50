"""portal/bodies.py in-process: the body cap, the drain before an early
answer, the 408 that replaces a view's answer, and the socket shutdown the
watchdog uses (tests/test_slow_bodies.py runs them in the real server)."""

from __future__ import annotations

import io
import json
import socket
import time

import pytest
from django.core.exceptions import BadRequest

from portal import bodies


class Input(io.BytesIO):
    """granian's wsgi.input as far as bodies.py sees it: read(n) returns n
    bytes, or fewer only at the end."""

    reads: int = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


def environ(body: bytes, **extra: str) -> dict:
    return {
        "REQUEST_METHOD": "PUT",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PORT": "5000",
        "wsgi.input": Input(body),
        **extra,
    }


def call(app, env: dict) -> tuple[str, dict, bytes]:
    seen: list = []
    result = bodies.serve_with_body(app, env, lambda s, h, e=None: seen.extend([s, dict(h)]))
    return seen[0], seen[1], b"".join(result)


def answers_at_once(env, start_response):
    """A view that refuses before reading (a manifest over the limit)."""
    start_response("413 Payload Too Large", [("Content-Type", "application/json")])
    return [b'{"errors": []}']


def reads(size: int):
    def app(env, start_response):
        try:
            env["wsgi.input"].read(size)
        except BadRequest:  # as Django's handler answers it
            start_response("400 Bad Request", [])
            return [b"Bad Request"]
        start_response("201 Created", [])
        return [b""]

    return app


def test_the_unread_rest_of_a_body_is_drained_before_an_early_answer(settings):
    settings.BERTH_BODY_DRAIN_MAX = 3 << 20
    env = environ(b"x" * (3 << 20))
    status, _, body = call(answers_at_once, env)
    assert status.startswith("413")
    assert body == b'{"errors": []}'
    assert env["wsgi.input"].received == 3 << 20  # all of it read, 1 MiB at a time
    assert env["wsgi.input"].ended


def test_a_body_larger_than_the_drain_limit_is_left_unread(settings):
    settings.BERTH_BODY_DRAIN_MAX = 1 << 20
    env = environ(b"x" * ((1 << 20) + 1))
    status, _, _ = call(answers_at_once, env)
    assert status.startswith("413")
    assert env["wsgi.input"].received == 0


def test_a_chunked_body_is_drained_up_to_the_limit(settings):
    settings.BERTH_BODY_DRAIN_MAX = 1000
    env = environ(b"x" * 5000, HTTP_TRANSFER_ENCODING="chunked")
    del env["CONTENT_LENGTH"]
    call(answers_at_once, env)
    assert env["wsgi.input"].received == 1000


def test_a_body_read_by_the_view_is_not_read_again():
    env = environ(b"x" * 100)
    status, _, _ = call(reads(100), env)
    assert status.startswith("201")
    assert env["wsgi.input"]._stream.reads == 1


def test_a_body_the_watchdog_ended_gets_408_whatever_the_view_answered():
    env = environ(b"x" * 11, CONTENT_LENGTH="100000")

    def stalled(env, start_response):
        body = env["wsgi.input"]
        body.expired = True  # as the watchdog marks it before it shuts the socket
        with pytest.raises(bodies.BodyTimeout):
            body.read(100000)  # comes back short: the read side was shut
        start_response("400 Bad Request", [])
        return [b"Bad Request"]

    status, headers, body = call(stalled, env)
    assert status == "408 Request Timeout"
    assert headers["Connection"] == "close"
    assert json.loads(body)["errors"][0]["code"] == "REQUEST_TIMEOUT"


def test_a_read_that_completes_as_the_watchdog_looks_is_kept():
    env = environ(b"x" * 10)
    body = bodies.DeadlineInput(env)

    class MarkedWhileReading(Input):
        def read(self, size: int | None = -1) -> bytes:
            body.expired = True  # the watchdog looked while this read waited…
            return super().read(size)  # …and every byte asked for still came

    body._stream = MarkedWhileReading(b"x" * 10)
    assert body.read(10) == b"x" * 10
    assert not body.expired


def test_a_read_beyond_the_cap_is_refused_without_reading(settings):
    """Every body thread already waits in a read: the next read is refused
    (the view answers 400, replaced by 503) and nothing is read."""
    settings.BERTH_WEB_BODY_THREADS = 2
    slots = bodies._BodySlots()
    held = slots.get()
    held.acquire()
    held.acquire()
    env = environ(b"x" * 10)
    original, bodies._slots = bodies._slots, slots
    try:
        status, headers, body = call(reads(10), env)
        held.release()  # one read ends: the next one gets its turn
        assert call(reads(10), environ(b"x" * 10))[0].startswith("201")
    finally:
        bodies._slots = original
    assert status == "503 Service Unavailable"
    assert headers["Retry-After"] == "1"
    assert json.loads(body)["errors"][0]["code"] == "UNAVAILABLE"
    assert env["wsgi.input"]._stream.tell() == 0


def test_idle_connections_from_the_peer_are_shut_for_reading_only():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = listener.accept()
            with conn:
                assert bodies.shut_idle_connections("127.0.0.1", port, idle=3600) == 0
                assert bodies.shut_idle_connections("127.0.0.2", port, idle=0.2) == 0
                time.sleep(0.3)  # ages the connection past the 0.2 s idle threshold
                assert bodies.shut_idle_connections("127.0.0.1", port, idle=0.2) == 1
                assert conn.recv(10) == b""  # the read that waited ends
                conn.sendall(b"HTTP/1.1 408")  # the answer still goes out
                assert client.recv(20) == b"HTTP/1.1 408"
