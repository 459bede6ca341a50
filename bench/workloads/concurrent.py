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


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, round(pct / 100 * (len(v) - 1)))]


def run(ctx: Context, reg_factory: Any) -> dict[str, Any]:
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
                f"{PROJECT}/r{i}",
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
