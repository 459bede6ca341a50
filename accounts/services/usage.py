"""When personal access tokens were last used, recorded off the request path.

A use is noted in this process's memory (``used``: a dict write); a background
thread writes what was noted every ``BERTH_AUDIT_FLUSH_SECONDS``, the pace of
the audit trail's buffered events, in one UPDATE per token — never older over
newer, so replicas writing in any order agree. The notes are written when the
process exits normally; a process killed with SIGKILL loses at most that last
interval's (``last_used_at`` is a hint, not a record: the audit trail has the
logins).
"""

from __future__ import annotations

import atexit
import datetime
import logging
import multiprocessing.util
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from accounts.models import PersonalAccessToken

log = logging.getLogger("berth.accounts")


class _LastUsed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, datetime.datetime] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0

    def note(self, token_id: int) -> None:
        when = timezone.now()
        with self._lock:
            self._pending[token_id] = when
        if settings.BERTH_AUDIT_BACKGROUND:
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="token-last-used", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(settings.BERTH_AUDIT_FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:
                log.exception("could not record when tokens were last used; trying again")
            finally:
                close_old_connections()

    def flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
        try:
            for token_id, when in pending.items():
                PersonalAccessToken.objects.filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lt=when), pk=token_id
                ).update(last_used_at=when)
        except Exception:
            with self._lock:  # keep them, unless a newer use came in meanwhile
                for token_id, when in pending.items():
                    self._pending.setdefault(token_id, when)
            raise
        return len(pending)

    def discard(self) -> None:
        with self._lock:
            self._pending = {}


_last_used = _LastUsed()


def used(token_id: int) -> None:
    """Note that the token proved a request now."""
    _last_used.note(token_id)


def flush() -> int:
    """Write the noted uses now (tests, shutdown); how many tokens."""
    return _last_used.flush()


def discard() -> None:
    """Forget the noted uses (tests)."""
    _last_used.discard()


def _flush_at_exit() -> None:
    try:
        _last_used.flush()
    except Exception:
        log.exception("when tokens were last used: lost at exit")


# As audit/services.py: atexit for a normal exit, multiprocessing's Finalize
# for the web server's worker processes.
atexit.register(_flush_at_exit)
multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=100)
