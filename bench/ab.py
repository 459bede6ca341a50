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
import base64
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.client import MANIFEST_ACCEPT, Registry, v2_answers
from bench.context import REPO_ROOT, TMP_DIR
from bench.peers.base import clean_env
from bench.workloads.manifests import wrk

PASSWORD = "Bench1234abcdZ9"  # noqa: S105 (the throwaway servers this starts)
PATH = "/v2/bench/manifest/manifests/v1"
QUIET = 0.08  # steal below this on both sides makes a round "quiet"


def worktree(rev: str) -> Path:
    sha = procs.run(["git", "-C", REPO_ROOT, "rev-parse", "--verify", rev]).stdout.strip()
    path = TMP_DIR / "ab" / sha[:12]
    if not (path / "manage.py").exists():
        shutil.rmtree(path, ignore_errors=True)
        procs.run(["git", "-C", REPO_ROOT, "worktree", "add", "-f", "--detach", path, sha])
    return path


class Server:
    def __init__(self, label: str, tree: Path, python: str, env: dict[str, str]) -> None:
        self.label, self.port = label, procs.free_port()
        self.data = TMP_DIR / "ab" / f"data-{self.port}"
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [python, "manage.py", "serve", "--addr", f"127.0.0.1:{self.port}"],
            cwd=tree,
            env=clean_env(
                BERTH_DATA_DIR=str(self.data),
                BERTH_LOG_LEVEL="WARNING",
                BERTH_ADMIN_PASSWORD=PASSWORD,
                DJANGO_SETTINGS_MODULE="portal.settings",
                **env,
            ),
            stdout=(self.data / "log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers: dict[str, str] | None = None  # for GETs: Accept and the token

    def ready(self) -> None:
        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited; see {self.data / 'log'}")
            return v2_answers(self.port, timeout=2)

        procs.wait_for(answers, timeout=120, interval=0.05, what=f"{self.label} /v2/")
        auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        for project in ("bench", "conc"):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            body = json.dumps({"project_name": project, "metadata": {"public": "false"}})
            headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
            conn.request("POST", "/api/v2.0/projects", body=body, headers=headers)
            status = conn.getresponse().status
            conn.close()
            if status not in (201, 409):
                raise RuntimeError(f"{self.label}: creating project {project}: {status}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.data, ignore_errors=True)


def get_round(server: Server, ctx: Any, args: argparse.Namespace) -> float:
    if server.headers is None:
        reg = Registry(server.url, ("admin", PASSWORD))
        reg.push_small_image("bench/manifest", "v1", os.urandom(1000))
        token = reg.auth_headers("GET", PATH, min_ttl=3600)
        server.headers = {"Accept": MANIFEST_ACCEPT, **token}
        reg.close()
    res = wrk(ctx, server.url + PATH, "GET", server.headers, args.conns, args.seconds)
    if not res["valid"]:
        raise RuntimeError(f"{server.label}: {res['non_2xx']} non-2xx answers")
    return float(res["rps"])


def push_round(server: Server, rnd: int, args: argparse.Namespace) -> float:
    errors: list[str] = []
    barrier = threading.Barrier(args.pushes + 1)
    reg = Registry(server.url, ("admin", PASSWORD))

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
        raise RuntimeError(f"{server.label}: {len(errors)} pushes failed: {errors[0]}")
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
    ap.add_argument("--python", default=str(REPO_ROOT / ".venv/bin/python"))
    args = ap.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    trees = [worktree(args.a), worktree(args.b) if args.b else REPO_ROOT]
    servers = [
        Server(label, tree, args.python, env) for label, tree in zip("AB", trees, strict=True)
    ]
    ctx = argparse.Namespace(workdir=TMP_DIR / "ab")
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    try:
        for server in servers:
            server.ready()
        for rnd in range(args.rounds):
            line = []
            for server in servers if rnd % 2 == 0 else servers[::-1]:
                steal = procs.Steal()
                if args.workload == "get":
                    value = get_round(server, ctx, args)
                else:
                    value = push_round(server, rnd, args)
                results[server.label].append((value, steal.result()))
                line.append(f"{server.label} {value:9.2f} (steal {100 * steal.result():2.0f} %)")
            print(f"round {rnd:2}: " + " | ".join(line), flush=True)
    finally:
        for server in servers:
            server.stop()
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
