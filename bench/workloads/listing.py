"""Tag list and catalog with many tags and repositories.

Seeding goes through the registry's own API, the way clients create content:
one manifest tagged N times in ``list/tags`` (a manifest PUT per tag), and N
repositories ``listrepo/r<i>`` each holding a config-only manifest (a blob mount
from ``list/src`` plus a manifest PUT), from a few client threads. Seeding is
bounded by the profile's budget; a registry too slow to reach N in it is
measured with what it has, and the result says so. The listing is measured at
each checkpoint of the profile (1,000, 10,000, 100,000) that seeding reached, so
every registry has figures at the same sizes.

Measured: the full listing, following ``Link: rel="next"`` with ``n=1000``
pages (a registry that ignores ``n`` answers in one page), the median of a few
repeats; and the latency of the first page of 100.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.client import MT_OCI_MANIFEST, Registry, image_manifest, next_link
from bench.context import Context

TAG_REPO = "list/tags"
SRC_REPO = "list/src"
REPO_PREFIX = "listrepo/r"
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


def _seed(
    ctx: Context,
    reg: Registry,
    start: int,
    n: int,
    deadline: float,
    job: Callable[[int], None],
    what: str,
) -> dict[str, Any]:
    """Run ``job(i)`` for i in [start, n) on a few threads until done or ``deadline``."""
    nxt = [start]
    done = [0]
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = nxt[0]
                    if i >= n or len(errors) > 20:
                        return
                    nxt[0] += 1
                try:
                    job(i)
                    with lock:
                        done[0] += 1
                except Exception as exc:
                    with lock:
                        errors.append(f"{exc!s:.300}")
        finally:
            reg.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(ctx.p["seed_threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic()) + 300)
    secs = time.perf_counter() - t0
    res = {
        "from": start,
        "to": n,
        "seeded": done[0],
        "seconds": secs,
        "per_s": done[0] / secs if secs else 0.0,
        "errors": errors[:5],
    }
    ctx.log(f"  seeded {done[0]} {what} ({start}..{n}) in {secs:.0f} s ({res['per_s']:.0f}/s)")
    return res


def _staged(
    ctx: Context,
    reg: Registry,
    job: Callable[[int], None],
    what: str,
    wanted: int,
    path: str,
    key: str,
) -> dict[str, Any]:
    """Seed in stages (the profile's checkpoints up to ``wanted``), measuring the
    listing at each one reached; the seeding budget covers all stages."""
    deadline = time.monotonic() + ctx.p["seed_budget"]
    stages = sorted({c for c in ctx.p["list_checkpoints"] if c < wanted} | {wanted})
    have = 0
    out: dict[str, Any] = {"wanted": wanted, "seeding": [], "at": {}}
    for target in stages:
        seed = _seed(ctx, reg, have, target, deadline, job, what)
        out["seeding"].append(seed)
        have += seed["seeded"]
        if seed["errors"] and not seed["seeded"]:
            break
        m = measure(ctx, reg, path, key)
        m["seeded"] = have
        out["at"][str(have)] = m
        ctx.log(
            f"  {what} listing at {have}: {m['entries']} entries in {m['full_seconds']:.3f} s "
            f"({m['pages']} pages), first page of 100 {m['first_page_100_ms']:.1f} ms"
        )
        if have < target:
            break
    out["seeded"] = have
    out["complete"] = have >= wanted
    secs = sum(s["seconds"] for s in out["seeding"])
    out["seed_per_s"] = have / secs if secs else 0.0
    out["largest"] = out["at"].get(str(have))
    if not out["complete"]:
        ctx.log(f"  {what}: {have} of {wanted} seeded within the {ctx.p['seed_budget']} s budget")
    return out


def list_all(reg: Registry, path: str, key: str) -> tuple[int, int, float]:
    """(entries, pages, seconds) for the whole listing."""
    t0 = time.perf_counter()
    url: str | None = path + "?n=1000"
    entries = pages = 0
    while url:
        r = reg.request("GET", url)
        doc = json.loads(r.body or b"{}")
        entries += len(doc.get(key) or [])
        pages += 1
        url = next_link(r)
        if pages > 10_000:
            raise RuntimeError("more than 10,000 pages: the registry loops")
    return entries, pages, time.perf_counter() - t0


def measure(ctx: Context, reg: Registry, path: str, key: str) -> dict[str, Any]:
    runs = [list_all(reg, path, key) for _ in range(ctx.p["list_repeats"])]
    first = []
    for _ in range(10):
        r = reg.request("GET", path + "?n=100")
        first.append(r.seconds)
    return {
        "entries": runs[-1][0],
        "pages": runs[-1][1],
        "full_seconds": statistics.median(r[2] for r in runs),
        "full_runs": [r[2] for r in runs],
        "first_page_100_ms": statistics.median(first) * 1000,
    }


def run(ctx: Context, registry: Registry) -> dict[str, Any]:
    # Its own client with a shorter timeout: seeding stops at the budget, and a
    # request stuck behind a registry's backlog must not hold it for long.
    reg = Registry(registry.base_url, registry.creds, timeout=120)
    out: dict[str, Any] = {}
    n_tags = ctx.p["list_tags"]
    n_repos = ctx.p["list_repos"]

    cfg = reg.push_blob(SRC_REPO, CONFIG)
    manifest = image_manifest(cfg, len(CONFIG), [])
    reg.push_manifest(SRC_REPO, "base", manifest, MT_OCI_MANIFEST)
    reg.push_blob(TAG_REPO, CONFIG)

    def tag_job(i: int) -> None:
        reg.push_manifest(TAG_REPO, f"t{i:06d}", manifest, MT_OCI_MANIFEST)

    out["tags"] = _staged(ctx, reg, tag_job, "tags", n_tags, f"/v2/{TAG_REPO}/tags/list", "tags")

    def repo_job(i: int) -> None:
        name = f"{REPO_PREFIX}{i:06d}"
        if not reg.mount_blob(name, cfg, SRC_REPO):
            reg.push_blob(name, CONFIG)
        reg.push_manifest(name, "v1", manifest, MT_OCI_MANIFEST)

    out["catalog"] = _staged(
        ctx, reg, repo_job, "repositories", n_repos, "/v2/_catalog", "repositories"
    )
    return out
