"""Request bodies under granian's WSGI: slow senders must not hold the server.

granian reads a body lazily, in the request's thread, and has no body timeout
(granian#728, declined upstream): ``wsgi.input.read(n)`` blocks until ``n``
bytes came or the connection ended, and nothing in Python can interrupt it (a
read handed to another thread instead deadlocks granian 2.8 once the request
has answered). A client that announced 100 kB and sent 11 bytes held one of the
``BERTH_WEB_THREADS`` for as long as it kept its connection open; a few dozen
such clients stopped ``/v2/`` and the probes. So, for every request with a body
(``serve_with_body``):

- **A cap** (``BERTH_WEB_BODY_THREADS``, 3/4 of the threads by default): at
  most that many threads of a web worker may be waiting in a read of a body at
  once; a request whose read finds them all taken is answered 503 at once. The
  other threads stay free for ``/v2`` reads, the probes and bodiless requests
  whatever senders do. Counted per read, not per request: a read of bytes
  already received takes microseconds, so bursts of small bodies (32 manifest
  PUTs at once) never meet the cap; only bodies that make threads wait do.
- **An idle timeout** (``BERTH_BODY_TIMEOUT``, like nginx's
  ``client_body_timeout``): a watchdog thread looks at the reads that have
  waited longer than that. The connection they wait on is one of this process's
  sockets from the request's peer address to the server's port, and it has
  neither received nor sent a byte for that long (``TCP_INFO``): the watchdog
  shuts down the read side of such sockets (``shutdown(SHUT_RD)``; a socket
  idle both ways that long is otherwise an idle keep-alive connection, which a
  server may close at any time). granian's read then ends, the request is
  answered 408 (the write side still works) and its thread is free. Linux
  only (``/proc/self/fd``, ``TCP_INFO``); elsewhere only the cap applies. A
  body that keeps trickling (a byte now and then) is not idle: it keeps its
  thread, within the cap; a proxy that buffers bodies stops it (deploy/).
- **Answers before the body** (a manifest over the limit, a refused upload):
  a client still writing its body would see the connection closed (a broken
  pipe) instead of the answer. Whatever the view left unread, up to
  ``BERTH_BODY_DRAIN_MAX`` bytes, is read and dropped (1 MiB at a time, under
  the same timeout) before the answer goes out.

The 503 and 408 are answered here, for every surface alike, in the envelope
they all share (``{"errors": [{"code", "message"}]}``). Written by hand: no
library bounds a body read that the server itself cannot time out.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest

log = logging.getLogger("berth.web")

# The largest piece one read asks granian for (drains, reads of "everything").
PIECE = 1 << 20
# struct tcp_info (linux/tcp.h): milliseconds since data was last sent, and
# last received, on the connection.
_LAST_DATA_SENT, _LAST_DATA_RECV = 44, 52

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BodyTimeout(BadRequest):
    """The body stopped arriving. ``serve_with_body`` answers 408; a
    ``BadRequest`` so that the view it passes through answers a quiet 400
    (logged as a warning, not a server error) that is then replaced."""


class BodyBusy(BadRequest):
    """Every body thread is waiting already: answered 503 (as ``BodyTimeout``)."""


def _idle_ms(conn: socket.socket) -> int:
    info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 64)
    (sent,) = struct.unpack_from("I", info, _LAST_DATA_SENT)
    (received,) = struct.unpack_from("I", info, _LAST_DATA_RECV)
    return min(sent, received)


def shut_idle_connections(peer: str, port: int, idle: float) -> int:
    """Shut down the read side of this process's TCP connections from ``peer``
    to local ``port`` that have neither sent nor received data for ``idle``
    seconds; how many. Each is looked at through a duplicate of its descriptor,
    so a descriptor closed (and reused) meanwhile is checked as what it is now."""
    if not hasattr(socket, "TCP_INFO") or not os.path.isdir("/proc/self/fd"):
        return 0
    want = ipaddress.ip_address(peer)
    shut = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = os.dup(int(name))
        except OSError:
            continue
        try:
            conn = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue
        with conn:
            try:
                if (
                    conn.family in (socket.AF_INET, socket.AF_INET6)
                    and conn.type == socket.SOCK_STREAM
                    and conn.getsockname()[1] == port
                    and ipaddress.ip_address(conn.getpeername()[0]) == want
                    and _idle_ms(conn) >= idle * 1000
                ):
                    conn.shutdown(socket.SHUT_RD)
                    shut += 1
            except (OSError, ValueError):
                continue  # not a connected TCP socket (any more)
    return shut


class _Watchdog:
    """The reads waiting for body bytes, and the one thread per process that
    ends those that waited longer than ``BERTH_BODY_TIMEOUT``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[float, DeadlineInput]] = {}
        self._thread: threading.Thread | None = None

    def waiting(self, body: DeadlineInput) -> None:
        with self._lock:
            self._waiting[id(body)] = (time.monotonic(), body)
            if self._thread is None:  # first use in this process (granian's worker)
                self._thread = threading.Thread(target=self._run, name="body-watchdog", daemon=True)
                self._thread.start()

    def done(self, body: DeadlineInput) -> None:
        with self._lock:
            self._waiting.pop(id(body), None)

    def _run(self) -> None:
        while True:
            timeout = settings.BERTH_BODY_TIMEOUT
            time.sleep(min(1.0, timeout / 4))  # the timeout's precision
            now = time.monotonic()
            with self._lock:
                late = [body for since, body in self._waiting.values() if now - since >= timeout]
                for body in late:  # looked at again only after another timeout
                    self._waiting[id(body)] = (now, body)
            for body in late:
                body.expired = True  # a read it ends comes back short: 408
            for peer, port in {(body.peer, body.port) for body in late}:
                try:
                    shut_idle_connections(peer, port, timeout)
                except Exception:
                    log.exception("could not end a stalled request body")


_watchdog = _Watchdog()


def has_body(environ: dict[str, Any]) -> bool:
    length = environ.get("CONTENT_LENGTH")
    if length:
        return length != "0"
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _announced_length(environ: dict[str, Any]) -> int | None:
    """Content-Length; None for a chunked body (or a bad length: the view refuses it)."""
    try:
        return int(environ["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


class DeadlineInput:
    """``wsgi.input`` under the watchdog: a read that the watchdog ended
    (short, after ``BERTH_BODY_TIMEOUT`` without a byte) raises ``BodyTimeout``."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._stream = environ["wsgi.input"]
        self._length = _announced_length(environ)
        self.peer = environ.get("REMOTE_ADDR", "")
        self.port = int(environ.get("SERVER_PORT") or 0)
        self.received = 0
        self.ended = self._length == 0
        self.expired = False
        self.busy = False

    def _call(self, read: Callable[..., bytes], size: int) -> bytes:
        if self.expired:
            raise BodyTimeout
        slots = _slots.get()
        if not slots.acquire(blocking=False):
            self.busy = True
            raise BodyBusy
        _watchdog.waiting(self)
        try:
            data = read(size)
        finally:
            _watchdog.done(self)
            slots.release()
        self.received += len(data)
        short = len(data) < size
        if self.expired and short:
            raise BodyTimeout
        self.expired = False  # it did arrive, just as the watchdog looked
        if short or (self._length is not None and self.received >= self._length):
            self.ended = True  # granian returns less only at the end
        return data

    def read(self, size: int | None = -1) -> bytes:
        if self.ended or size == 0:
            return b""
        if size is not None and size > 0:
            return self._call(self._stream.read, size)
        parts: list[bytes] = []
        while not self.ended:
            parts.append(self._call(self._stream.read, PIECE))
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        if self.ended:
            return b""
        line = self._call(self._stream.readline, -1)
        if not line:
            self.ended = True
        return line

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def drain(self, limit: int) -> None:
        """Read and drop what is left of the body when that is at most
        ``limit`` bytes (a chunked body: up to ``limit``), so that the client,
        done writing, reads the answer; stop quietly if it stops arriving."""
        if self._length is not None and self._length - self.received > limit:
            return
        budget = limit
        try:
            while not self.ended and not self.expired and budget > 0:
                budget -= len(self.read(min(PIECE, budget)))
        except (BodyTimeout, BodyBusy):
            pass


def _answer(
    start_response: StartResponse, status: str, code: str, message: str, *extra: tuple[str, str]
) -> list[bytes]:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(status, [*headers, ("Connection", "close"), *extra])
    return [body]


class _BodySlots:
    """At most ``BERTH_WEB_BODY_THREADS`` threads of this process waiting in a
    read of a body at once (made at first use: settings are read then, in the
    worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None

    def get(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(settings.BERTH_WEB_BODY_THREADS)
            return self._slots


_slots = _BodySlots()


def serve_with_body(
    app: WSGIApp, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """Run ``app`` for a request with a body, reading through a
    ``DeadlineInput``: its answer is held back until the unread rest of the
    body was drained, or replaced by a 503 (every body thread waiting) or a 408
    (the body stopped arriving)."""
    body = DeadlineInput(environ)
    environ["wsgi.input"] = body
    started: list[Any] = []

    def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [status, headers, exc_info]

    result = app(environ, hold)
    if body.busy or body.expired:
        if hasattr(result, "close"):
            result.close()
        if body.busy:
            return _answer(
                start_response,
                "503 Service Unavailable",
                "UNAVAILABLE",
                "too many requests are sending a body at once; retry",
                ("Retry-After", "1"),
            )
        return _answer(
            start_response,
            "408 Request Timeout",
            "REQUEST_TIMEOUT",
            f"no part of the request body arrived for {settings.BERTH_BODY_TIMEOUT:g} s",
        )
    body.drain(settings.BERTH_BODY_DRAIN_MAX)
    start_response(*started)
    return result
