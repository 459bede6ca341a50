"""Django's SQLite backend, with write transactions queued in the process.

SQLite admits one writer at a time. A writer that finds the lock taken sleeps in
SQLite's busy handler in growing steps (up to 100 ms), so under concurrent
pushes a queued writer oversleeps the moment the lock frees: 22 % of the samples
of the repository-creation profile waited in ``BEGIN IMMEDIATE``
(docs/benchmarks.md). Here every ``BEGIN IMMEDIATE`` of this process first takes
a process-wide lock, held until the transaction commits or rolls back: writers
of one process queue on a Python lock and wake the moment it is released.

Other processes (the Celery worker, ``manage.py`` commands, a second web
worker) are not covered by that lock; between processes SQLite's busy timeout
(``OPTIONS["timeout"]``) stays the fallback, as before. The lock is taken with
the same timeout, and if that runs out (a transaction held open far too long)
the writer goes on to ``BEGIN`` without it and SQLite decides, so the queue can
never deadlock what would otherwise have worked.

Only transactions (``transaction.atomic``) are queued; a single statement in
autocommit mode takes SQLite's lock for itself, as before.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

_guard = threading.Lock()
_write_locks: dict[str, threading.Lock] = {}


def _write_lock(name: str) -> threading.Lock:
    with _guard:
        return _write_locks.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    _queued_write: threading.Lock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        lock = None
        if self.transaction_mode in ("IMMEDIATE", "EXCLUSIVE") and not self.is_in_memory_db():
            lock = _write_lock(str(self.settings_dict["NAME"]))
            timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
            if not lock.acquire(timeout=timeout):
                lock = None  # let SQLite's busy handler decide, as without the queue
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._queued_write = lock

    def _release_queued_write(self) -> None:
        lock, self._queued_write = self._queued_write, None
        if lock is not None:
            lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            if self.connection is None or self.connection.in_transaction is False:
                self._release_queued_write()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_queued_write()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_queued_write()
