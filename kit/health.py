"""Health of this process and of what it depends on, for probes and for
Harbor's ``/api/v2.0/health`` (docs/scale-out.md, "Probes").

- *Liveness* (``/livez``): the process answers. No dependency is checked: a
  database outage must not make Kubernetes restart every replica.
- *Readiness* (``/readyz``): the database, the blob storage, the job broker and
  the shared cache (when configured) each answer within ``BERTH_READY_TIMEOUT``
  seconds, checked in parallel; and the process is not draining.

Draining: on SIGTERM the supervisor (``manage.py serve``) calls
:func:`set_draining`; from then on readiness answers 503 so the balancer stops
sending new requests while in-flight ones finish. The web server runs in child
processes, so the state is shared through a file: the supervisor calls
:func:`use_drain_file` before it starts them (it sets ``BERTH_DRAIN_FILE``,
which they inherit), and :func:`set_draining` creates that file. Without the
variable the state is this process's only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

_draining = threading.Event()


def _drain_file() -> Path | None:
    path = os.environ.get("BERTH_DRAIN_FILE", "")
    return Path(path) if path else None


def use_drain_file(path: Path) -> None:
    """For the supervisor, before it starts the web server: share the draining
    state with its children through ``path`` (they inherit the variable). A
    file left by an earlier run is removed."""
    os.environ["BERTH_DRAIN_FILE"] = str(path)
    path.unlink(missing_ok=True)


def set_draining(draining: bool = True) -> None:
    """Mark this process (and, through ``BERTH_DRAIN_FILE``, its children) as
    draining: readiness answers 503 from now on. ``False`` clears it."""
    path = _drain_file()
    if draining:
        _draining.set()
        if path is not None:
            path.touch()
    else:
        _draining.clear()
        if path is not None:
            path.unlink(missing_ok=True)


def is_draining() -> bool:
    if _draining.is_set():
        return True
    path = _drain_file()
    return path is not None and path.exists()


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    healthy: bool
    error: str = ""

    def as_json(self) -> dict[str, str]:
        body = {"name": self.name, "status": "healthy" if self.healthy else "unhealthy"}
        if self.error:
            body["error"] = self.error
        return body


def database() -> None:
    """Readiness check: the metadata database answers."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread ends here: leave no connection behind


def cache() -> None:
    """Readiness check: the shared cache answers (only when one is configured)."""
    from django.core.cache import caches

    caches["default"].ping()


def _checks() -> dict[str, Callable[[], None]]:
    """The checks named by ``BERTH_READINESS_CHECKS`` (name -> dotted path): the
    apps above the kit supply theirs (blob storage, the job broker) by name, so
    the kit imports none of them."""
    checks = {name: import_string(path) for name, path in settings.BERTH_READINESS_CHECKS.items()}
    if settings.BERTH_CACHE_URL:
        checks["cache"] = cache
    return checks


def components() -> list[Component]:
    """Every dependency, checked in parallel, each within BERTH_READY_TIMEOUT."""
    results: dict[str, Component] = {}

    def run(name: str, check: Callable[[], None]) -> None:
        try:
            check()
            results[name] = Component(name, True)
        except Exception as exc:
            # The type only: messages may hold hosts or credentials.
            results[name] = Component(name, False, type(exc).__name__)

    threads = []
    for name, check in _checks().items():
        thread = threading.Thread(target=run, args=(name, check), daemon=True)
        thread.start()
        threads.append((name, thread))
    end = time.monotonic() + settings.BERTH_READY_TIMEOUT
    for _, thread in threads:
        thread.join(max(end - time.monotonic(), 0))
    return [results.get(name) or Component(name, False, "timeout") for name, _ in threads]


def readiness() -> tuple[bool, dict[str, object]]:
    """(ready, body) for /readyz."""
    if is_draining():
        return False, {"status": "draining", "components": []}
    found = components()
    ready = all(c.healthy for c in found)
    return ready, {
        "status": "healthy" if ready else "unhealthy",
        "components": [c.as_json() for c in found],
    }
