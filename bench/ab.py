"""Paired A/B of two Berth trees: ``python -m bench.ab REV [--workload get|push]``.

A full run measures one registry after another, minutes apart; on a shared host
the CPU the hypervisor steals moves within seconds, so a change worth 10 % is
lost in it. This runs one ``manage.py serve`` (embedded default) from each tree
*at the same time* and alternates short measurements between them, A B B A A B
..., so both sides see the same host. Each round gives a ratio B / A; the
median ratio is the result, and for GETs also the median over the rounds in
which both sides saw little steal.

A is the git revision given (checked out as a worktree under ``bench/tmp/ab/``),
B is this working tree, uncommitted changes included, unless ``--b REV``.
Workloads: ``get`` (wrk on a manifest by tag with a token, req/s, higher is
better) and ``push`` (bursts of concurrent small pushes, seconds, lower is
better). Nothing here is part of ``make bench``; bench/notes.md cites its
output for the changes it measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

from bench import procs
from bench.client import MANIFEST_ACCEPT, Registry
from bench.context import REPO_ROOT, TMP_DIR, Context
from bench.peers.berth import Berth, BerthScaled
from bench.run import wait_ready
from bench.workloads.manifests import wrk

PATH = "/v2/bench/manifest/manifests/v1"
QUIET = 0.08  # steal below this on both sides makes a round "quiet"


def worktree(rev: str) -> Path:
    sha = procs.run(["git", "-C", REPO_ROOT, "rev-parse", "--verify", rev]).stdout.strip()
    path = TMP_DIR / "ab" / sha[:12]
    if not (path / "manage.py").exists():
        shutil.rmtree(path, ignore_errors=True)
        procs.run(["git", "-C", REPO_ROOT, "worktree", "add", "-f", "--detach", path, sha])
    return path


PEERS: dict[str, type[Berth]] = {"berth": Berth, "berth-scaled": BerthScaled}


def side(label: str, tree: Path, python: str, stamp: str, kind: str = "berth") -> Berth:
    """The harness's own Berth peer (bench/peers/berth.py), run from ``tree``:
    the embedded default, or the scaled-out one with its own PostgreSQL and
    Redis for each side."""
    ctx = Context(
        profile_name="quick",
        workdir=TMP_DIR / "ab" / f"run-{stamp}" / label,
        outdir=TMP_DIR / "ab" / f"run-{stamp}",
        workloads=[],
        allow_install=False,
        berth_python=python,
    )
    peer = PEERS[kind](ctx, tree=tree)
    peer.name = label
    return peer


def start(peer: Berth, env: dict[str, str]) -> None:
    peer.prepare()
    peer.extra_env.update(env)  # after prepare(): the scaled peer sets its own there
    peer.launch()
    wait_ready(peer)
    peer.ensure_projects(["bench", "conc"])


def get_round(server: Berth, args: argparse.Namespace, tokens: dict[str, dict[str, str]]) -> float:
    """wrk on the manifest by tag; the image and the token are made on the first turn."""
    if server.name not in tokens:
        reg = Registry(server.url, server.creds)
        reg.push_small_image("bench/manifest", "v1", os.urandom(1000))
        token = reg.auth_headers("GET", PATH, min_ttl=3600)
        tokens[server.name] = {"Accept": MANIFEST_ACCEPT, **token}
        reg.close()
    headers = tokens[server.name]
    res = wrk(server.ctx, server.url + PATH, "GET", headers, args.conns, args.seconds)
    if not res["valid"]:
        raise RuntimeError(f"{server.name}: {res['non_2xx']} non-2xx answers")
    return float(res["rps"])


def push_round(server: Berth, rnd: int, args: argparse.Namespace) -> float:
    errors: list[str] = []
    barrier = threading.Barrier(args.pushes + 1)
    reg = Registry(server.url, server.creds)

    def one(i: int) -> None:
        barrier.wait(timeout=120)
        try:
            reg.push_small_image(f"conc/r{rnd}-{i}", "v1", os.urandom(1024))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc!s:.200}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.pushes)]
    for t in threads:
        t.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    reg.close()
    if errors:
        raise RuntimeError(f"{server.name}: {len(errors)} pushes failed: {errors[0]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    ap.add_argument("a", help="git revision of side A")
    ap.add_argument("--b", help="git revision of side B (default: this working tree)")
    ap.add_argument("--workload", choices=("get", "push"), default="get")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=3, help="wrk seconds per turn (get)")
    ap.add_argument("--conns", type=int, default=64, help="wrk connections (get)")
    ap.add_argument("--pushes", type=int, default=200, help="concurrent pushes per turn (push)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for both servers")
    ap.add_argument(
        "--peer",
        choices=sorted(PEERS),
        default="berth",
        help="embedded default, or scaled out (PostgreSQL + Redis of its own per side)",
    )
    ap.add_argument("--python", default=str(REPO_ROOT / ".venv/bin/python"))
    args = ap.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    trees = [worktree(args.a), worktree(args.b) if args.b else REPO_ROOT]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    servers = [
        side(label, tree, args.python, stamp, args.peer)
        for label, tree in zip("AB", trees, strict=True)
    ]
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    tokens: dict[str, dict[str, str]] = {}
    try:
        for server in servers:
            start(server, env)
        for rnd in range(args.rounds):
            line = []
            for server in servers if rnd % 2 == 0 else servers[::-1]:
                steal = procs.Steal()
                if args.workload == "get":
                    value = get_round(server, args, tokens)
                else:
                    value = push_round(server, rnd, args)
                stolen = steal.result()
                results[server.name].append((value, stolen))
                line.append(f"{server.name} {value:9.2f} (steal {100 * stolen:2.0f} %)")
            print(f"round {rnd:2}: " + " | ".join(line), flush=True)
    finally:
        for server in servers:
            server.teardown()
            server.remove_data()
    pairs = list(zip(results["A"], results["B"], strict=True))
    ratios = [b / a for (a, _), (b, _) in pairs]
    unit = "req/s, higher is better" if args.workload == "get" else "s, lower is better"
    print(
        f"A median {statistics.median(v for v, _ in results['A']):.2f}, "
        f"B median {statistics.median(v for v, _ in results['B']):.2f} ({unit}); "
        f"B/A per round: median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {len(ratios)} rounds)"
    )
    quiet = [b / a for (a, sa), (b, sb) in pairs if sa < QUIET and sb < QUIET]
    if quiet:
        print(
            f"rounds with steal under {100 * QUIET:.0f} % on both sides: {len(quiet)}, "
            f"B/A median {statistics.median(quiet):.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
