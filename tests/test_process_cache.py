"""kit.cache.ProcessCache: the embedded default's manifest cache (lock-free reads)."""

from __future__ import annotations

import threading
import time

import pytest

from accounts.services.tokens import _VerifiedCache
from kit.cache import ProcessCache


def make(name: str, **options: int) -> ProcessCache:
    return ProcessCache(name, {"OPTIONS": options, "TIMEOUT": 60})


def test_values_are_kept_as_they_are_and_shared_by_location():
    value = ("sha256:" + "a" * 64, b"payload")
    make("pc-share").set("k", value)
    assert make("pc-share").get("k") is value  # another handle, same store; not a copy
    assert make("pc-other").get("k") is None


def test_add_incr_touch_delete_follow_the_cache_contract():
    c = make("pc-ops")
    assert c.add("n", 1) is True
    assert c.add("n", 5) is False
    assert c.incr("n") == 2
    assert c.incr("n", 10) == 12
    assert c.get("n") == 12
    with pytest.raises(ValueError):
        c.incr("absent")
    assert c.touch("n", 100) is True
    assert c.touch("absent", 100) is False
    assert c.has_key("n")
    assert c.delete("n") is True
    assert c.delete("n") is False
    assert c.get("n", "default") == "default"


def test_entries_expire():
    c = make("pc-expiry")
    c.set("short", "v", 0.05)
    c.set("forever", "w", None)
    assert c.get("short") == "v"
    time.sleep(0.1)
    assert c.get("short") is None
    assert not c.has_key("short")
    assert c.add("short", "again") is True  # an expired entry does not block add
    assert c.get("forever") == "w"


def test_the_oldest_entries_go_when_full():
    c = make("pc-full", MAX_ENTRIES=10, CULL_FREQUENCY=5)
    for i in range(10):
        c.set(f"k{i}", i)
    c.set("new", "n")
    kept = [i for i in range(10) if c.get(f"k{i}") is not None]
    assert kept == list(range(2, 10))  # a fifth of them, oldest first
    assert c.get("new") == "n"
    c.set("k5", "replaced")  # replacing an entry evicts nothing
    assert [i for i in range(10) if c.get(f"k{i}") is not None] == list(range(2, 10))


def test_expired_entries_go_before_live_ones_when_full():
    c = make("pc-expired-first", MAX_ENTRIES=4)
    c.set("old-live", 1)
    c.set("dead", 2, 0.01)
    c.set("a", 3)
    c.set("b", 4)
    time.sleep(0.05)
    c.set("new", 5)
    assert c.get("old-live") == 1 and c.get("new") == 5


def test_concurrent_increments_are_not_lost():
    c = make("pc-race")
    c.set("n", 0)

    def bump() -> None:
        for _ in range(2000):
            c.incr("n")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.get("n") == 16_000


def test_verified_token_cache_is_bounded_and_honours_expiry():
    cache = _VerifiedCache(limit=3)
    far = time.time() + 3600
    for i in range(5):
        cache.put(f"t{i}", {"exp": far, "sub": f"u{i}"})
    assert [cache.get(f"t{i}") is not None for i in range(5)] == [False, False, True, True, True]
    cache.put("stale", {"exp": time.time() - 3600, "sub": "x"})
    assert cache.get("stale") is None
