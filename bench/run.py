"""Run the benchmarks: ``python -m bench.run [--quick|--smoke] [--only P,..] [--workloads W,..]``.

Every selected registry is installed (if missing), started with comparable
settings (filesystem storage, quiet logs), put through the same workloads one
after another, and stopped; raw results go to ``bench/results/<stamp>/`` as
JSON (one file per registry, plus ``run.json`` with the machine and the
command), and a full run re-renders ``docs/benchmarks.md`` from them
(``python -m bench.render`` does that alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import procs
from bench.client import Registry
from bench.context import PROFILES, REPO_ROOT, TMP_DIR, WORKLOADS, Context
from bench.peers.base import Peer, Unavailable
from bench.peers.berth import Berth, BerthNginx, BerthScaled
from bench.peers.distribution import Distribution3, Distribution28
from bench.peers.nginx import Nginx
from bench.peers.pulp import Pulp
from bench.peers.zot import Zot, build_zb
from bench.workloads import blobs, concurrent, docker, listing, manifests, portal, replication

PEERS: dict[str, type[Peer]] = {
    p.name: p
    for p in (Nginx, Distribution28, Berth, BerthScaled, BerthNginx, Pulp, Distribution3, Zot)
}  # Berth next to the registries its targets compare it with: less drift between them.
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def _cmd_version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "?"
    return {
        "nproc": os.cpu_count(),
        "memory_bytes": mem,
        "cpu": cpu,
        "kernel": platform.release(),
        "os": f"Debian {debian}",
        "python": platform.python_version(),
        "berth_python": "",
        "wrk": _cmd_version(["wrk", "-v"]),
        "docker": _cmd_version(["docker", "--version"]),
        "go": _cmd_version(["/usr/local/go/bin/go", "version"]),
        "filesystem": _cmd_version(["findmnt", "-no", "SOURCE,FSTYPE", "--target", str(TMP_DIR)]),
    }


PROJECTS = ["bench", "conc", "concq", "list", "listrepo", "dock"]


def wait_ready(peer: Peer, timeout: float = 180) -> tuple[float, float]:
    """Seconds from now until GET /v2/ first answers at all (200 or 401), and
    until it answers 200 (running the auth flow, as a client would, if challenged)."""
    t0 = time.monotonic()

    def answers() -> bool:
        peer.check_alive()
        conn = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=5)
        try:
            conn.request("GET", "/v2/")
            return conn.getresponse().status in (200, 401)
        finally:
            conn.close()

    def ok() -> bool:
        peer.check_alive()
        reg = Registry(peer.url, peer.creds, timeout=30)
        try:
            return reg.request("GET", "/v2/", expect=None).status == 200
        finally:
            reg.close()

    procs.wait_for(answers, timeout=timeout, interval=0.02, what=f"{peer.name} /v2/")
    first = time.monotonic() - t0
    procs.wait_for(ok, timeout=timeout, interval=0.02, what=f"{peer.name} /v2/ 200")
    return first, time.monotonic() - t0


def wait_quiet(ctx: Context) -> None:
    """On a shared machine, wait (bounded) until other processes leave the CPU
    mostly idle, and the hypervisor stops taking it (steal), before a
    measurement; what was waited and seen is recorded."""
    budget = ctx.shared.setdefault("quiet_budget", ctx.quiet_wait_total)
    if budget <= 0:
        return
    t0 = time.monotonic()
    while True:
        probe = procs.ForeignCpu()
        time.sleep(2)
        seen = probe.result()
        share, steal = seen["foreign_share"], seen["steal_share"]
        if (share < 0.15 and steal < 0.10) or budget - (time.monotonic() - t0) <= 0:
            break
        ctx.log(
            f"  waiting for a quiet machine: others use {100 * share:.0f}% of the CPU, "
            f"the hypervisor takes {100 * steal:.0f}%"
        )
    waited = time.monotonic() - t0
    ctx.shared["quiet_budget"] = max(0.0, budget - waited)
    ctx.shared.setdefault("quiet_waits", []).append(
        {"waited": waited, "share": share, "steal": steal}
    )


def run_peer(ctx: Context, peer: Peer) -> dict[str, Any]:
    res: dict[str, Any] = {"meta": peer.meta(), "status": "ok", "workloads": {}, "errors": {}}
    t_peer = time.monotonic()
    foreign = procs.ForeignCpu()
    try:
        ctx.log(f"== {peer.name}: install")
        peer.install()
    except Unavailable as exc:
        res["status"] = "skipped"
        res["reason"] = str(exc)
        ctx.log(f"== {peer.name}: SKIPPED: {exc}")
        return res
    res["meta"] = peer.meta()
    sel = ctx.workloads
    try:
        if isinstance(peer, Nginx):
            peer.serve(blobs.blob_file(ctx)[0].parent)
        peer.prepare()
        if peer.kind == "limit":
            peer.launch()
            procs.wait_for(
                lambda: (
                    procs.run(
                        ["curl", "-sf", "-o", "/dev/null", peer.url + "/"], check=False
                    ).returncode
                    in (0, 22)
                ),
                timeout=30,
                what="nginx",
            )
            reg = Registry(peer.url)
            if "blobs" in sel:
                res["workloads"]["blobs"] = blobs.run(ctx, reg, pushes=False)
            res["memory_loaded"] = procs.memory(peer.roots())
            return res

        # Start: cold (fresh data directory), stop, then warm (restart on that data).
        wait_quiet(ctx)
        peer.launch()
        cold_answer, cold = wait_ready(peer)
        peer.stop()
        peer.launch()
        warm_answer, warm = wait_ready(peer)
        res["workloads"]["startup"] = {
            "cold_seconds": cold,
            "warm_seconds": warm,
            "cold_first_answer_seconds": cold_answer,
            "warm_first_answer_seconds": warm_answer,
        }
        ctx.log(
            f"  start to first 200 on /v2/: cold {cold:.2f} s, warm {warm:.2f} s "
            f"(first answer {cold_answer:.2f} / {warm_answer:.2f} s)"
        )
        peer.ensure_projects(PROJECTS)
        time.sleep(ctx.p["idle_settle"])
        res["memory_idle"] = procs.memory(peer.roots())
        res["memory_idle_registry_only"] = procs.memory(peer.registry_roots())
        ctx.log(
            f"  idle memory: RSS {res['memory_idle']['rss'] / 2**20:.0f} MiB, "
            f"PSS {res['memory_idle']['pss'] / 2**20:.0f} MiB "
            f"({res['memory_idle']['processes']} processes)"
        )

        reg = Registry(peer.url, peer.creds)
        with procs.MemorySampler(peer.roots()) as sampler:
            steps: list[tuple[str, Any]] = [
                ("blobs", lambda: blobs.run(ctx, reg)),
                ("manifests", lambda: manifests.run(ctx, reg, sampler)),
                ("docker", lambda: docker.run(ctx, peer, reg)),
                ("listing", lambda: listing.run(ctx, reg)),
                # The portal's pages with 10,000 projects and 100,000 artifacts (Berth only).
                ("portal", lambda: portal.run(ctx, peer)),
                # Last: a registry that cannot take 1,000 pushes at once may stay
                # saturated for minutes afterwards (Pulp did), spoiling what follows.
                (
                    "concurrent",
                    lambda: concurrent.run(ctx, lambda: Registry(peer.url, peer.creds), peer=peer),
                ),
                (
                    "concurrent_quota",
                    lambda: concurrent.run_quota(ctx, lambda: Registry(peer.url, peer.creds), peer),
                ),
            ]
            for name, step in steps:
                if name not in sel:
                    continue
                sampler.label = name
                wait_quiet(ctx)
                ctx.log(f"-- {peer.name}: {name}")
                t0 = time.monotonic()
                noise = procs.ForeignCpu()
                try:
                    peer.check_alive()
                    res["workloads"][name] = step()
                    res["workloads"][name]["wall"] = time.monotonic() - t0
                    seen = noise.result()
                    res["workloads"][name]["foreign_cpu_share"] = seen["foreign_share"]
                    res["workloads"][name]["steal_share"] = seen["steal_share"]
                except Exception as exc:
                    res["errors"][name] = f"{type(exc).__name__}: {exc}"
                    res["errors"][name + "_trace"] = traceback.format_exc()[-4000:]
                    ctx.log(f"  {name} FAILED: {exc!s:.400}")
            sampler.label = "after"
        res["memory_peak"] = {
            "rss": sampler.peak_rss,
            "pss": sampler.peak_pss,
            "by_workload": sampler.peak_by_label,
        }
        time.sleep(ctx.p["idle_settle"])
        res["memory_after_load"] = procs.memory(peer.roots())
        res["auth_seen"] = reg.auth_mode
        res["token_fetches"] = reg.token_fetches
    except Exception as exc:
        res["status"] = "failed"
        res["reason"] = f"{type(exc).__name__}: {exc}"
        res["trace"] = traceback.format_exc()[-4000:]
        ctx.log(f"== {peer.name}: FAILED: {exc!s:.600}")
    finally:
        try:
            peer.teardown()
        except Exception as exc:
            ctx.log(f"  teardown of {peer.name} failed: {exc}")
        ctx.shared.setdefault("to_remove", []).append(peer)
        res["seconds"] = time.monotonic() - t_peer
        res["foreign_cpu"] = foreign.result()
        if res["foreign_cpu"]["foreign_share"] > 0.05:
            ctx.log(
                f"  NOTE: other processes on this machine used "
                f"{100 * res['foreign_cpu']['foreign_share']:.0f}% of its CPU during this peer"
            )
        if res["foreign_cpu"]["steal_share"] > 0.05:
            ctx.log(
                f"  NOTE: the hypervisor took {100 * res['foreign_cpu']['steal_share']:.0f}% "
                "of this machine's CPU (steal) during this peer"
            )
    if res["errors"] and res["status"] == "ok":
        res["status"] = "partial"
    return res


def run_replication(ctx: Context) -> bool:
    """Berth's replication against ``skopeo sync`` (registries of its own, not
    the peers'); ``replication.json``. Whether it succeeded."""
    wait_quiet(ctx)
    ctx.log("== replication (Berth → Berth, Berth → Distribution, skopeo sync alongside)")
    t0 = time.monotonic()
    noise = procs.ForeignCpu()
    try:
        res: dict[str, Any] = {"status": "ok", **replication.run(ctx)}
    except Exception as exc:
        res = {
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc()[-4000:],
        }
        ctx.log(f"  replication FAILED: {exc!s:.600}")
    res["wall"] = time.monotonic() - t0
    seen = noise.result()
    res["foreign_cpu_share"] = seen["foreign_share"]
    res["steal_share"] = seen["steal_share"]
    (ctx.outdir / "replication.json").write_text(json.dumps(res, indent=2, default=str))
    return bool(res["status"] == "ok")


def zb_status(ctx: Context) -> dict[str, Any]:
    try:
        path = build_zb(ctx)
    except Unavailable as exc:
        return {"status": "skipped", "reason": str(exc)}
    return {"status": "built", "path": str(path), "note": "zb suite not wired: zot unavailable"}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--quick", action="store_const", dest="profile", const="quick")
    ap.add_argument("--smoke", action="store_const", dest="profile", const="smoke")
    ap.add_argument("--only", default="", help=f"comma-separated peers from: {', '.join(PEERS)}")
    ap.add_argument("--skip", default="", help="comma-separated peers to leave out")
    ap.add_argument(
        "--workloads", default="", help=f"comma-separated, from: {', '.join(WORKLOADS)}"
    )
    ap.add_argument("--out", default=str(RESULTS_DIR), help="results root directory")
    ap.add_argument("--no-install", action="store_true", help="never install anything")
    ap.add_argument("--render", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--seed-budget", type=float, help="seconds of seeding per listing data set")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="seconds the run may wait, in total, for other processes to leave the CPU idle "
        "before measurements (default: 900 for full runs, 0 otherwise)",
    )
    ap.add_argument(
        "--berth-python",
        default=os.environ.get("BENCH_BERTH_PYTHON")
        or (
            str(REPO_ROOT / ".venv/bin/python")
            if (REPO_ROOT / ".venv/bin/python").exists()
            else sys.executable
        ),
    )
    args = ap.parse_args(argv)
    # SIGTERM (a timeout, a CI stop) unwinds like Ctrl-C, so every registry is stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    names = [n for n in (args.only.split(",") if args.only else PEERS) if n]
    for n in names + [s for s in args.skip.split(",") if s]:
        if n not in PEERS:
            ap.error(f"unknown peer {n!r}; known: {', '.join(PEERS)}")
    names = [n for n in names if n not in args.skip.split(",")]
    workloads = [w for w in (args.workloads.split(",") if args.workloads else WORKLOADS) if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")

    if args.seed_budget:
        PROFILES[args.profile]["seed_budget"] = args.seed_budget
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        profile_name=args.profile,
        workdir=TMP_DIR / "run" / stamp,
        outdir=outdir,
        workloads=workloads,
        allow_install=not args.no_install,
        berth_python=args.berth_python,
        quiet_wait_total=args.quiet_wait
        if args.quiet_wait is not None
        else (900.0 if args.profile == "full" else 0.0),
    )
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    run_doc: dict[str, Any] = {
        "stamp": stamp,
        "profile": args.profile,
        "sizes": PROFILES[args.profile],
        "command": os.environ.get("BENCH_COMMAND") or command.strip(),
        "peers": names,
        "workloads": workloads,
        "machine": machine(),
        "status": "running",
    }
    run_doc["machine"]["berth_python"] = _cmd_version([args.berth_python, "--version"])
    (outdir / "run.json").write_text(json.dumps(run_doc, indent=2))
    ctx.log(f"profile {args.profile}; peers {', '.join(names)}; results in {outdir}")

    failed = False
    finished = False
    try:
        if "blobs" in workloads:
            wait_quiet(ctx)
            run_doc["sha256"] = blobs.sha256_rate(ctx)
            ctx.log(f"sha256 on one core: {run_doc['sha256']['Bps'] / 1e9:.2f} GB/s")
        if "zot" in names and args.profile != "smoke":
            run_doc["zb"] = zb_status(ctx)
        for name in names:
            res = run_peer(ctx, PEERS[name](ctx))
            (outdir / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
            failed |= res["status"] in ("failed", "partial")
        if "replication" in workloads:
            failed |= not run_replication(ctx)
        finished = True
    finally:
        docker.stop(ctx)
        for peer in ctx.shared.get("to_remove", []):
            peer.remove_data()
        blob = ctx.shared.get("blob")
        if blob is not None:
            blob[0].unlink(missing_ok=True)
        run_doc["quiet_waits"] = ctx.shared.get("quiet_waits", [])
        run_doc["status"] = "done" if finished else "interrupted"
        run_doc["total_seconds"] = time.monotonic() - ctx.started
        (outdir / "run.json").write_text(json.dumps(run_doc, indent=2))
        ctx.log(f"done in {run_doc['total_seconds']:.0f} s; results in {outdir}")

    render = args.render if args.render is not None else args.profile == "full"
    if render:
        from bench import render as render_mod

        render_mod.main([str(outdir)])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
