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

from django.core.cache.backends.redis import RedisCache

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
