"""Manifest lookups (tag or digest → manifest bytes) answered from a cache.

Entries are keyed by a per-repository generation number. Every write that can
change what a reference names (manifest put, tag put, deletes) bumps the
generation after its transaction commits, so a reader that raced the write and
stores what it read stores it under the old generation, which nobody asks for
again. No entry can outlive the write that made it wrong.

The cache is ``CACHES["manifests"]``: per-process memory when one web process
serves (the embedded default), no cache at all with several processes and no
shared cache configured (settings.py decides).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.core.cache import caches
from django.db import transaction

TTL = 3600


def _cache() -> Any:
    return caches["manifests"]


def _generation_key(repository_name: str) -> str:
    return "g:" + hashlib.blake2b(repository_name.encode(), digest_size=16).hexdigest()


def _entry_key(repository_name: str, reference: str, generation: int) -> str:
    raw = f"{repository_name}\0{reference}".encode()
    return f"m:{generation}:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def _generation(repository_name: str) -> int:
    """The repository's generation. A missing one (never set, evicted, cache
    restarted) starts from the clock, so a generation number never comes back."""
    cache = _cache()
    key = _generation_key(repository_name)
    generation = cache.get(key)
    if generation is None:
        cache.add(key, time.time_ns(), None)
        generation = cache.get(key, 0)
    return generation


def lookup_key(repository_name: str, reference: str) -> str:
    return _entry_key(repository_name, reference, _generation(repository_name))


def get(key: str) -> Any:
    return _cache().get(key)


def put(key: str, value: Any) -> None:
    _cache().set(key, value, TTL)


def invalidate(repository_name: str) -> None:
    """Forget every cached lookup of the repository once the current transaction commits."""

    def bump() -> None:
        cache = _cache()
        key = _generation_key(repository_name)
        try:
            cache.incr(key)
        except ValueError:  # absent: any fresh clock value is newer than all before
            cache.set(key, time.time_ns(), None)

    transaction.on_commit(bump)
