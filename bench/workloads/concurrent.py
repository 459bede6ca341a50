"""Many concurrent small pushes into one project (namespace).

N client threads wait on a barrier, then each pushes one small image (a unique
1 KiB layer, a unique config, an OCI manifest: 5 requests plus whatever the auth
flow needs) into its own repository ``conc/r<i>`` of the same project, over
its own connection. Wall time, completed pushes, pushes/s and per-push latency
percentiles are recorded, and the first errors verbatim. Bounded: threads that
have not finished when the budget runs out are counted as unfinished.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from bench.client import Registry
from bench.context import Context

PROJECT = "conc"
# The quota-on variant pushes into this project, which has a storage limit set
# (high enough that no push is refused: what is measured is the cost of checking
# and counting usage under concurrency, Harbor's hot row, harbor#18440).
QUOTA_PROJECT = "concq"
QUOTA_LIMIT = 100 * 2**30


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, round(pct / 100 * (len(v) - 1)))]


def run_quota(ctx: Context, reg_factory: Any, peer: Any) -> dict[str, Any]:
    """The same pushes into a project with a storage limit. Peers without
    Harbor's quota API are skipped."""
    set_limit = getattr(peer, "set_storage_limit", None)
    if set_limit is None:
        return {"skipped": "no Harbor quota API"}
    set_limit(QUOTA_PROJECT, QUOTA_LIMIT)
    res = run(ctx, reg_factory, project=QUOTA_PROJECT, peer=peer)
    res["storage_limit"] = QUOTA_LIMIT
    return res


class LockWaits:
    """Samples PostgreSQL's ``pg_locks`` every 20 ms for lock requests not yet
    granted (what sessions wait on when they queue behind one another's rows:
    transaction ids, tuples, relations), counting what they wait on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.waiting_samples = 0
        self.max_waiting = 0
        self.total_waiting = 0
        self.kinds: dict[str, int] = {}  # what the waiters waited on, counted per sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT l.locktype, COALESCE(c.relname, '') FROM pg_locks l "
                    "LEFT JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted"
                ).fetchall()
                self.samples += 1
                self.total_waiting += len(rows)
                self.waiting_samples += bool(rows)
                self.max_waiting = max(self.max_waiting, len(rows))
                for locktype, relation in rows:
                    key = f"{locktype}:{relation}" if relation else locktype
                    self.kinds[key] = self.kinds.get(key, 0) + 1
                self._stop.wait(0.02)

    def result(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "samples_with_waiters": self.waiting_samples,
            "max_waiting": self.max_waiting,
            "mean_waiting": self.total_waiting / self.samples if self.samples else 0.0,
            "waited_on": self.kinds,
        }


def run(ctx: Context, reg_factory: Any, project: str = PROJECT, peer: Any = None) -> dict[str, Any]:
    """The pushes. On PostgreSQL (``peer.database_url``) the server's lock
    waits are sampled during the run: a hot row (a quota's usage, say) would
    show as pushes waiting on one another's row locks."""
    url = getattr(peer, "database_url", "")
    sampler = LockWaits(url) if url else None
    if sampler:
        sampler.start()
    try:
        res = _run(ctx, reg_factory, project)
    finally:
        if sampler:
            sampler.stop()
    if sampler:
        res["lock_waits"] = sampler.result()
        ctx.log(f"  lock waits (PostgreSQL pg_locks, sampled): {res['lock_waits']}")
    return res


def _run(ctx: Context, reg_factory: Any, project: str) -> dict[str, Any]:
    n = ctx.p["concurrent_pushes"]
    budget = ctx.p["concurrent_budget"]
    barrier = threading.Barrier(n + 1)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    reg: Registry = reg_factory()

    def one(i: int) -> None:
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            return
        t0 = time.perf_counter()
        try:
            reg.push_small_image(
                f"{project}/r{i}",
                "v1",
                os.urandom(1024),
                config=b'{"architecture":"amd64","os":"linux","bench":%d}' % i,
            )
            with lock:
                lat.append(time.perf_counter() - t0)
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc!s:.300}")
        finally:
            reg.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    deadline = time.monotonic() + budget
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    wall = time.perf_counter() - t0
    unfinished = sum(t.is_alive() for t in threads)
    reg.cancelled = True  # the stragglers stop at their next request
    ok = len(lat)
    res = {
        "pushes": n,
        "ok": ok,
        "failed": len(errors),
        "unfinished": unfinished,
        "wall_seconds": wall,
        "pushes_per_s": ok / wall if wall else 0.0,
        "p50_s": _pct(lat, 50),
        "p99_s": _pct(lat, 99),
        "max_s": max(lat) if lat else 0.0,
        "first_errors": errors[:5],
        "budget_s": budget,
    }
    ctx.log(
        f"  {n} concurrent pushes: {ok} ok, {len(errors)} failed, {unfinished} unfinished, "
        f"{wall:.1f} s, p99 {res['p99_s']:.2f} s"
    )
    return res
