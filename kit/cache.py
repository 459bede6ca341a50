"""The shared cache (``BERTH_CACHE_URL=redis://…``): Django's Redis backend made
to fail fast and to fail in one way.

A cache is an optimisation: Berth must answer correctly with Redis slow, down
or restarted. This backend therefore

- connects and reads with short socket timeouts and never retries inside
  redis-py (a dead server costs one timeout, not four with back-off);
- after a failure stops calling Redis at all for ``breaker_seconds`` (a
  circuit breaker shared by the threads of the process), so a dead server does
  not add a connect timeout to every request; the first call after that window
  probes it again;
- raises one exception, :class:`CacheUnavailable`, for every Redis failure, so
  the callers (``registry/services/cache.py``, ``accounts/services/auth.py``)
  decide what a missing cache means for them: a database read, a per-process
  fallback.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.signals import setting_changed

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 0.5
BREAKER_SECONDS = 5.0


class CacheUnavailable(Exception):
    """The shared cache could not be used (unreachable, timed out, or skipped
    while the breaker is open). Treat as a miss; never fail a request on it."""


class _Breaker:
    """Open (skip Redis) for a few seconds after a failure. Shared by every
    thread of the process: Django gives each thread its own cache object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until: dict[str, float] = {}

    def check(self, name: str) -> None:
        if time.monotonic() < self._open_until.get(name, 0.0):
            raise CacheUnavailable(f"cache {name}: skipped after a recent failure")

    def failed(self, name: str, seconds: float) -> None:
        with self._lock:
            self._open_until[name] = time.monotonic() + seconds

    def reset(self) -> None:
        with self._lock:
            self._open_until.clear()


breaker = _Breaker()


def _guarded(method_name: str) -> Any:
    def method(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        import redis

        breaker.check(self._location)
        try:
            return getattr(super(ResilientRedisCache, self), method_name)(*args, **kwargs)
        except redis.RedisError as exc:
            breaker.failed(self._location, self._breaker_seconds)
            raise CacheUnavailable(f"cache unavailable: {type(exc).__name__}") from exc

    method.__name__ = method_name
    return method


class _OneClientPerPool(RedisCacheClient):
    """Django's client builds a new ``redis.Redis`` for every command
    (``get_client``), and its constructor fills a table of response callbacks:
    a quarter of a manifest GET's Python time behind Redis (bench/notes.md).
    This one keeps one per connection pool; ``redis.Redis`` is thread-safe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._pools.get(index)
            if pool is None:
                pool = self._pools.setdefault(
                    index, self._pool_class.from_url(self._servers[index], **self._pool_options)
                )
            client = self._clients.setdefault(index, self._client(connection_pool=pool))
        return client


class ResilientRedisCache(RedisCache):
    """``RedisCache`` with fail-fast timeouts, no client retries and a breaker.

    OPTIONS: ``breaker_seconds`` (default 5); everything else goes to redis-py's
    connection pool as with ``RedisCache``. Timeouts given in the URL
    (``?socket_timeout=2``) override the defaults.
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options = dict(params.get("OPTIONS", {}))
        self._breaker_seconds = float(options.pop("breaker_seconds", BREAKER_SECONDS))
        options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
        options.setdefault("socket_timeout", READ_TIMEOUT)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = _OneClientPerPool
        self._location = server

    add = _guarded("add")
    get = _guarded("get")
    set = _guarded("set")
    touch = _guarded("touch")
    delete = _guarded("delete")
    get_many = _guarded("get_many")
    has_key = _guarded("has_key")
    incr = _guarded("incr")
    set_many = _guarded("set_many")
    delete_many = _guarded("delete_many")
    clear = _guarded("clear")

    def ping(self) -> None:
        """Raise CacheUnavailable unless the server answers (readiness)."""
        import redis

        try:
            self._cache.get_client(write=True).ping()
        except redis.RedisError as exc:
            breaker.failed(self._location, self._breaker_seconds)
            raise CacheUnavailable(f"cache unavailable: {type(exc).__name__}") from exc


class _Store:
    def __init__(self) -> None:
        self.data: dict[str, tuple[Any, float | None]] = {}
        self.lock = threading.Lock()


_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


class ProcessCache(BaseCache):
    """Process memory for values that are never changed in place (the manifest
    lookups: ints, tuples and frozen dataclasses), read without a lock and without
    pickling.

    Django's ``LocMemCache`` takes its lock on every read and runs Python code
    while holding it; under many request threads the GIL switches a thread out
    inside that section and the others queue behind it, which made the lock one
    of the hottest spots of a manifest GET (bench/notes.md). Here a read is one
    ``dict.get``, atomic under the GIL; writes (rare: a miss, an invalidation)
    take a lock among themselves. Values are stored as they are: a caller must
    not change what it put or got. Eviction is oldest-first once MAX_ENTRIES is
    reached; expired entries are dropped on the next write that finds them.
    """

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        with _stores_lock:
            self._store = _stores.setdefault(name, _Store())

    def _live(self, key: str) -> tuple[Any, float | None] | None:
        item = self._store.data.get(key)
        if item is not None and item[1] is not None and item[1] <= time.time():
            return None
        return item

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        item = self._live(self.make_key(key, version))
        return default if item is None else item[0]

    def has_key(self, key: str, version: int | None = None) -> bool:
        return self._live(self.make_key(key, version)) is not None

    def _set(self, key: str, value: Any, timeout: Any) -> None:
        data = self._store.data
        if key not in data and len(data) >= self._max_entries:
            now = time.time()
            expired = [k for k, (_, exp) in data.items() if exp is not None and exp <= now]
            for k in expired or list(data)[: max(1, len(data) // self._cull_frequency)]:
                data.pop(k, None)
        data[key] = (value, self.get_backend_timeout(timeout))

    def set(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_key(key, version)
        with self._store.lock:
            self._set(key, value, timeout)

    def add(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_key(key, version)
        with self._store.lock:
            if self._live(key) is not None:
                return False
            self._set(key, value, timeout)
            return True

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> Any:
        key = self.make_key(key, version)
        with self._store.lock:
            item = self._live(key)
            if item is None:
                raise ValueError(f"Key '{key}' not found")
            self._store.data[key] = (item[0] + delta, item[1])
            return item[0] + delta

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_key(key, version)
        with self._store.lock:
            item = self._live(key)
            if item is None:
                return False
            self._store.data[key] = (item[0], self.get_backend_timeout(timeout))
            return True

    def delete(self, key: str, version: int | None = None) -> bool:
        key = self.make_key(key, version)
        with self._store.lock:
            return self._store.data.pop(key, None) is not None

    def clear(self) -> None:
        with self._store.lock:
            self._store.data.clear()


class ThreadHandle:
    """``handle()`` is this thread's ``caches[alias]``, for caches read on every
    request: ``caches[...]`` takes asgiref's process-wide lock on every access;
    a plain thread-local takes none (the handle is per thread either way).
    Tests that change ``CACHES`` get new handles, as ``caches`` does."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._local = threading.local()
        setting_changed.connect(self._forget, weak=False)

    def __call__(self) -> Any:
        try:
            return self._local.cache
        except AttributeError:
            self._local.cache = caches[self.alias]
            return self._local.cache

    def _forget(self, *, setting: str, **kwargs: Any) -> None:
        if setting == "CACHES":
            self._local = threading.local()
