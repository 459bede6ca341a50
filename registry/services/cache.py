"""Manifest lookups (tag or digest → manifest bytes) answered from a cache.

Every repository has a generation number, and every entry is stored with the
generation it was read under. Every write that can change what a reference
names (manifest put, tag put, deletes) bumps the generation after its
transaction commits; an entry counts only while its generation is the
repository's current one. A reader that raced the write and stores what it
read stores it under the old generation, which no lookup accepts again. No
entry can outlive the write that made it wrong. A lookup reads the generation
and the entry together (``get_many``: one round trip to a shared cache).

The cache is ``CACHES["manifests"]`` (settings.py decides, ``BERTH_MANIFEST_CACHE``):
the shared Redis of ``BERTH_CACHE_URL``, per-process memory when one web process
serves (the embedded default), or none.

A shared cache can fail, and then the cache is skipped, never the request:

- a lookup that cannot read the generation reads the database and stores
  nothing (a missing generation starts from the clock, so a restarted Redis
  never brings an old generation number back);
- a bump that fails (Redis unreachable at the moment of the commit) is kept by
  the process and retried every second until it succeeds, and before any
  other lookup of that process uses the cache. Entries expire after
  ``BERTH_MANIFEST_CACHE_TTL`` seconds (60 for the shared cache), which bounds
  how long another replica can serve a lookup whose invalidation was missed:
  after that time the retry is dropped, as every entry it could have
  invalidated has expired.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from kit.cache import CacheUnavailable, ThreadHandle

log = logging.getLogger("berth.registry")
RETRY_INTERVAL = 1.0


_cache = ThreadHandle("manifests")  # read on every manifest GET


def _generation_key(repository_name: str) -> str:
    return "g:" + hashlib.blake2b(repository_name.encode(), digest_size=16).hexdigest()


def _entry_key(repository_name: str, reference: str) -> str:
    raw = f"{repository_name}\0{reference}".encode()
    return "m:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _start_generation(key: str) -> int | None:
    """A missing generation (never set, evicted, cache restarted) starts from
    the clock, so a generation number never comes back."""
    cache = _cache()
    cache.add(key, time.time_ns(), None)
    return cache.get(key)


def _bump(repository_name: str) -> None:
    cache = _cache()
    key = _generation_key(repository_name)
    try:
        cache.incr(key)
    except ValueError:  # absent: any fresh clock value is newer than all before
        cache.set(key, time.time_ns(), None)


class _MissedBumps:
    """Bumps that failed, retried by a daemon thread and before every lookup."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, repository_name: str) -> None:
        with self._lock:
            self._names.setdefault(repository_name, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="berth-cache-retry", daemon=True
                )
                self._thread.start()

    def __bool__(self) -> bool:
        return bool(self._names)

    def flush(self) -> None:
        """Retry every missed bump; raises CacheUnavailable if one still fails.
        A bump older than twice the TTL is dropped: what it would have
        invalidated has expired."""
        with self._lock:
            pending = dict(self._names)
        expired = time.monotonic() - 2 * settings.BERTH_MANIFEST_CACHE_TTL
        for name, since in pending.items():
            if since > expired:
                _bump(name)
                log.info("cache: missed invalidation of %s done", name)
            with self._lock:
                if self._names.get(name) == since:
                    del self._names[name]

    def _run(self) -> None:
        while True:
            time.sleep(RETRY_INTERVAL)
            try:
                self.flush()
            except CacheUnavailable:
                continue
            with self._lock:
                if not self._names:
                    self._thread = None
                    return


_missed = _MissedBumps()


def reset() -> None:
    """Forget the invalidations still to retry (what a new process starts with)."""
    with _missed._lock:
        _missed._names.clear()


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a lookup's answer goes, and the generation it was read under."""

    key: str
    generation: int


def find(repository_name: str, reference: str) -> tuple[Slot | None, Any]:
    """The cached answer of a lookup (None on a miss) and the slot for storing
    a fresh one. The slot is None when the cache cannot be trusted now
    (unreachable, or an invalidation of this process is still pending): read
    the database and store nothing."""
    generation_key = _generation_key(repository_name)
    key = _entry_key(repository_name, reference)
    try:
        if _missed:
            _missed.flush()
        found = _cache().get_many([generation_key, key])
        generation = found.get(generation_key)
        if generation is None:
            generation = _start_generation(generation_key)
            if generation is None:
                return None, None
    except CacheUnavailable:
        return None, None
    entry = found.get(key)
    if entry is not None and entry[0] == generation:
        return Slot(key, generation), entry[1]
    return Slot(key, generation), None


def put(slot: Slot | None, value: Any) -> None:
    if slot is None:
        return
    # Best effort: without it the next lookup reads the database again.
    with contextlib.suppress(CacheUnavailable):
        _cache().set(slot.key, (slot.generation, value), settings.BERTH_MANIFEST_CACHE_TTL)


def invalidate(repository_name: str) -> None:
    """Forget every cached lookup of the repository once the current transaction commits."""

    def bump() -> None:
        try:
            _bump(repository_name)
        except CacheUnavailable:
            log.warning("cache: invalidation of %s missed; retrying", repository_name)
            _missed.add(repository_name)

    transaction.on_commit(bump)
