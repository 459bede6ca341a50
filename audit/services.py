"""Recording audit events.

- ``record(...)``: for control-plane changes. Call it inside the change's own
  transaction: the row commits or rolls back with the change.
- ``record_later(...)``: for the registry's hot path (pushes, pulls, deletes).
  Events go to an in-process buffer that a background thread writes in batches,
  together with the repositories' pull counts; the buffer is flushed when the
  process exits normally, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.events import Operation, Resource, Result
from audit.models import AuditEvent

log = logging.getLogger("berth.audit")

FLUSH_SIZE = 500


def record(
    *,
    actor: Any,
    operation: Operation,
    resource_type: Resource,
    resource: str,
    project: Any = None,
    project_id: int | None = None,
    result: Result = Result.SUCCESS,
    client_ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """``project``: the Project, or its name (with its id as ``project_id``,
    or looked up by name)."""
    fields = _fields(
        actor=actor,
        project=project,
        project_id=project_id,
        operation=operation,
        resource_type=resource_type,
        resource=resource,
        result=result,
        client_ip=client_ip,
        detail=detail,
        when=timezone.now(),
    )
    return AuditEvent.objects.create(**with_project_ids([fields])[0])


def _text(value: str, limit: int) -> str:
    """What a client sent (a failed login's name), cut to fit its column and without
    NUL, which PostgreSQL refuses: one unwritable event would hold back the batch."""
    return value.replace("\x00", "")[:limit]


def _fields(*, actor: Any, project: Any, project_id: int | None, **entry: Any) -> dict[str, Any]:
    """``audit_entry`` for an actor object and a project: a Project, or its
    name (with its id when the caller has it)."""
    username, actor_kind = _who(actor)
    project_name = project if isinstance(project, str) else getattr(project, "name", "")
    if project_id is None and not isinstance(project, str):
        project_id = getattr(project, "pk", None)
    return audit_entry(
        username=username,
        actor_kind=actor_kind,
        project_name=project_name,
        project_id=project_id,
        **entry,
    )


def _who(actor: Any) -> tuple[str, str]:
    """(user name, actor kind) as the trail records them: no name for anonymous."""
    username = getattr(actor, "name", "") if getattr(actor, "authenticated", False) else ""
    return username, getattr(actor, "kind", "anonymous")


def audit_entry(
    *,
    username: str,
    actor_kind: str,
    operation: Operation,
    resource_type: Resource,
    resource: str,
    project_name: str,
    project_id: int | None,
    result: Result,
    client_ip: str,
    detail: dict[str, Any] | None,
    when: datetime,
) -> dict[str, Any]:
    """An audit row's fields, cut to fit their columns. The choices are kept as
    their plain text: a dict of strings, numbers and times is one the garbage
    collector does not track, while an enum member would make it tracked, and
    the buffer holds thousands of these between writes (under a manifest GET
    load they were what pushed the web process into full collections of
    50-100 ms: docs/benchmarks.md)."""
    return {
        "occurred_at": when,
        "username": _text(username, 255),
        "actor_kind": actor_kind,
        "operation": str(operation),
        "resource_type": str(resource_type),
        "resource": _text(resource, 512),
        "project_name": _text(project_name, 255),
        "project_id": project_id,
        "result": str(result),
        "client_ip": _text(client_ip, 64),
        "detail": detail,
    }


def event_entry(
    *,
    actor: Any,
    operation: Operation,
    resource_type: Resource,
    resource: str,
    project: str,
    project_id: int | None = None,
    client_ip: str = "",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit entry to carry in a durable event's payload (JSON):
    audit/consumers.py writes it once the event is delivered. Give the
    project's id when the caller has it: delivery may come late, after the
    project was deleted and another made under its name."""
    username, actor_kind = _who(actor)
    return {
        "username": username,
        "actor_kind": actor_kind,
        "operation": str(operation),
        "resource_type": str(resource_type),
        "resource": resource,
        "project": project,
        "project_id": project_id,
        "client_ip": client_ip,
        "detail": detail,
        "at": timezone.now().isoformat(),
    }


@dataclass
class _Pending:
    events: list[dict[str, Any]] = field(default_factory=list)
    pulls: Counter[str] = field(default_factory=Counter)
    last_pull: dict[str, datetime] = field(default_factory=dict)


class _Buffer:
    """Events waiting for the writer thread, in a deque that request threads
    append to without a lock (``deque.append`` and ``popleft`` are atomic).

    Before, each event took the buffer's lock; under a manifest GET load of
    ~14,000 a second a thread switched out by the GIL while holding it kept
    every other request thread waiting (docs/benchmarks.md). The writer drains
    the deque and works out the pull counts on its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # starting the writer; flushes among themselves
        self._queue: deque[tuple[dict[str, Any], str | None]] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, event: dict[str, Any], pulled_repository: str | None) -> None:
        self._queue.append((event, pulled_repository))
        if settings.BERTH_AUDIT_BACKGROUND:
            self._ensure_thread()
        # Event.set takes the event's lock, which every request thread would
        # contend for while the writer is behind (the buffer stays over the
        # mark): wake it once, reading the flag without a lock.
        if len(self._queue) >= FLUSH_SIZE and not self._wake.is_set():
            self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.BERTH_AUDIT_FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("could not write audit events; keeping them for the next try")
            finally:
                close_old_connections()

    def _drain(self) -> list[tuple[dict[str, Any], str | None]]:
        pop = self._queue.popleft
        try:
            return [pop() for _ in range(len(self._queue))]
        except IndexError:  # discard() emptied it meanwhile: nothing to keep
            return []

    def flush(self) -> int:
        with self._lock:
            items = self._drain()
            if not items:
                return 0
            pending = _Pending()
            for event, repository in items:
                pending.events.append(event)
                if repository:
                    pending.pulls[repository] += 1
                    pending.last_pull[repository] = event["occurred_at"]
            try:
                _write(pending)
            except Exception:
                self._queue.extendleft(reversed(items))  # back in front of newer ones
                raise
            return len(items)

    def discard(self) -> None:
        self._queue.clear()


_COLUMNS = (
    "occurred_at",
    "username",
    "actor_kind",
    "operation",
    "resource_type",
    "resource",
    "project_name",
    "project_id",
    "result",
    "client_ip",
)


# Rows per INSERT: 10 columns, so 5,000 bound values a statement, well inside
# SQLite's (32,766) and PostgreSQL's (65,535) limits.
ROWS_PER_INSERT = 500


def _insert(events: list[dict[str, Any]]) -> None:
    """The buffered events as multi-row INSERTs of up to ``ROWS_PER_INSERT``
    rows. The buffer holds the events of every pull, thousands a second under
    load, and is written by a thread of the web process, which shares the GIL
    with the request threads. ``bulk_create`` spent ~30 µs of Python per row;
    ``executemany`` binds in C but lets go of the GIL for every row's step and
    must win it back from the request threads before the next one: under a
    manifest GET load of ~14,000 a second that hand-over, once per row, halved
    the throughput and made the tail (docs/benchmarks.md). One statement per
    500 rows hands the GIL over once per 500. Buffered events carry no detail
    (``record_later``): the column stays NULL."""
    meta = AuditEvent._meta
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in _COLUMNS)
    row = f"({', '.join(['%s'] * len(_COLUMNS))})"
    adapt = _datetime_adapter()
    rest = itemgetter(*_COLUMNS[1:])
    with connection.cursor() as cursor:
        for start in range(0, len(events), ROWS_PER_INSERT):
            chunk = events[start : start + ROWS_PER_INSERT]
            values = list(chain.from_iterable((adapt(e["occurred_at"]), *rest(e)) for e in chunk))
            # Identifiers come from the model; every value is a bound parameter.
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row] * len(chunk))}",
                values,
            )


def _datetime_adapter() -> Any:
    """How the connection stores an event's time. On SQLite Django stores the
    text of the naive UTC time, and its adapter gets there through a time-zone
    round trip (~5 µs a row, a quarter of the writer's time per pull, on the
    thread the request threads share the GIL with); an event's time is already
    UTC (``timezone.now()``), so the same text is made directly. Anything
    else goes through Django's own adapter."""
    django_adapter = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite" or not settings.USE_TZ:
        return django_adapter

    def adapt(value: datetime) -> Any:
        if value.tzinfo is UTC:
            return str(value.replace(tzinfo=None))
        return django_adapter(value)

    return adapt


def with_project_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in the project id of entries that name their project only (pulls
    on /v2 know the repository's name, not its project's id), through the
    resolver the layer that owns projects names (``BERTH_AUDIT_PROJECT_IDS``):
    one query for the batch. A project deleted and made again under its name
    between the pull and this write (a second, at the buffer's pace) is the
    only way a row can reach the wrong one."""
    names = {e["project_name"] for e in events if e["project_id"] is None and e["project_name"]}
    if not names:
        return events
    ids = import_string(settings.BERTH_AUDIT_PROJECT_IDS)(names)
    return [
        {**e, "project_id": ids.get(e["project_name"])} if e["project_id"] is None else e
        for e in events
    ]


def _write(pending: _Pending) -> None:
    # Pull counts belong to the content layer above: it names its writer in
    # BERTH_AUDIT_PULL_SINK, called in the same transaction as the events.
    record_pulls = import_string(settings.BERTH_AUDIT_PULL_SINK) if pending.pulls else None
    pending.events = with_project_ids(pending.events)
    with transaction.atomic():
        _insert(pending.events)
        if record_pulls is not None:
            record_pulls(counts=dict(pending.pulls), last_pulled=dict(pending.last_pull))


_buffer = _Buffer()


def record_later(
    *,
    actor: Any,
    operation: Operation,
    resource_type: Resource,
    resource: str,
    project: Any = None,
    client_ip: str = "",
    pulled_repository: str | None = None,
    result: Result = Result.SUCCESS,
) -> None:
    """Queue an event (and a pull) without touching the database on this
    request; a project given by name gets its id when the buffer is written."""
    event = _fields(
        actor=actor,
        project=project,
        project_id=None,
        operation=operation,
        resource_type=resource_type,
        resource=resource,
        result=result,
        client_ip=client_ip,
        detail=None,
        when=timezone.now(),
    )
    _buffer.add(event, pulled_repository)


def flush() -> int:
    """Write everything buffered now (tests, shutdown)."""
    return _buffer.flush()


def discard() -> None:
    """Forget everything buffered: this module's reset (tests; portal/process.py)."""
    _buffer.discard()


def _flush_at_exit() -> None:
    try:
        _buffer.flush()
    except Exception:
        log.exception("audit events lost at exit")


# A normal interpreter exit runs atexit; the web server's workers are
# multiprocessing children, which leave through multiprocessing's own exit path
# (it runs Finalize callbacks, not atexit). Either way the buffer is written.
atexit.register(_flush_at_exit)
multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=100)
