"""Profile Berth under one workload with py-spy: ``python -m bench.profile WORKLOAD``.

Starts Berth (embedded default) as the benchmark does, runs one workload from
the quick profile while ``py-spy record`` samples every Berth process
(``--subprocesses``, ``--idle`` off), and writes the collapsed stacks plus a
summary of the hottest functions (inclusive and own time, in % of samples) to
``bench/results/profiles/<stamp>-<workload>/`` (stacks gzipped). py-spy comes from
``bench/tmp/tools-venv`` (installed on first use).

Workloads: ``manifests`` (wrk GET at 64 connections), ``tags`` / ``repos``
(listing seeds), ``push`` (one blob push), ``pull`` (blob pulls),
``concurrent`` (many small pushes), ``startup`` (serve until the first 200),
``docker`` (docker push of a 10 x 16 MiB layer image).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import procs
from bench.client import MANIFEST_ACCEPT, Registry
from bench.context import PROFILES, REPO_ROOT, TMP_DIR, Context
from bench.peers.berth import Berth
from bench.run import PROJECTS, wait_ready
from bench.workloads import blobs, concurrent, docker, listing, manifests

TOOLS = TMP_DIR / "tools-venv"


def py_spy() -> Path:
    exe = TOOLS / "bin" / "py-spy"
    if not exe.exists():
        procs.run([sys.executable, "-m", "venv", TOOLS], timeout=300)
        procs.run([TOOLS / "bin" / "pip", "install", "-q", "py-spy", "pyinstrument"], timeout=900)
    return exe


def summarize(raw: Path, top: int = 40) -> str:
    """Top functions by inclusive and by own samples from py-spy's raw (collapsed) output."""
    incl: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"samples: {total}", "", "inclusive:"]
    out += [f"{100 * c / total:6.1f}%  {f}" for f, c in incl.most_common(top)]
    out += ["", "own:"]
    out += [f"{100 * c / total:6.1f}%  {f}" for f, c in own.most_common(top)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    ap.add_argument(
        "workload",
        choices=["manifests", "tags", "repos", "push", "pull", "concurrent", "startup", "docker"],
    )
    ap.add_argument("--seconds", type=float, default=20, help="how long to sample (load runs)")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument(
        "--berth-python",
        default=str(REPO_ROOT / ".venv/bin/python")
        if (REPO_ROOT / ".venv/bin/python").exists()
        else sys.executable,
    )
    args = ap.parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = REPO_ROOT / "bench" / "results" / "profiles" / f"{stamp}-{args.workload}"
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        profile_name="quick",
        workdir=TMP_DIR / "run" / f"profile-{stamp}",
        outdir=out,
        workloads=[],
        berth_python=args.berth_python,
    )
    spy = py_spy()
    peer = Berth(ctx)
    peer.install()
    peer.prepare()
    raw = out / "stacks.txt"
    rec: subprocess.Popen[bytes] | None = None

    def record(pid: int, secs: float) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                spy, "record", "--pid", str(pid), "--subprocesses", "--rate", str(args.rate),
                "--duration", str(int(secs)), "--format", "raw", "--output", str(raw),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(out / "py-spy.log", "wb"),
        )  # fmt: skip

    try:
        peer.launch()
        if args.workload == "startup":
            rec = record(peer.procs[0].pid, args.seconds)
            first, ok = wait_ready(peer)
            result: object = {"first_answer": first, "first_200": ok}
        else:
            wait_ready(peer)
            peer.ensure_projects(PROJECTS)
            reg = Registry(peer.url, peer.creds)
            if args.workload in ("manifests", "pull"):
                reg.push_small_image(manifests.REPO, manifests.TAG, os.urandom(2048))
            if args.workload == "pull":
                path, digest, size = blobs.blob_file(ctx)
                blobs.push_monolithic(reg, f"{blobs.REPO}-mono", path, digest, size)
            if args.workload == "docker":
                from tests.clients import build_scratch_image

                d = docker.dockerd(ctx)
                ref = f"{peer.host}/dock/app:1"
                build_scratch_image(d, ref, ctx.workdir / "build", layers=10, layer_size=16 << 20)
                d.login(peer.host, *peer.creds)
            rec = record(peer.procs[0].pid, args.seconds)
            time.sleep(1)
            if args.workload == "manifests":
                path = f"/v2/{manifests.REPO}/manifests/{manifests.TAG}"
                hdrs = {"Accept": MANIFEST_ACCEPT, **reg.auth_headers("GET", path)}
                result = manifests.wrk(ctx, reg.base_url + path, "GET", hdrs, 64, args.seconds - 2)
            elif args.workload in ("tags", "repos"):
                PROFILES["quick"]["seed_budget"] = args.seconds - 2
                PROFILES["quick"]["list_tags"] = 10**6 if args.workload == "tags" else 1
                PROFILES["quick"]["list_repos"] = 10**6
                result = listing.run(ctx, reg)
            elif args.workload == "push":
                result = blobs.run(ctx, reg)
            elif args.workload == "pull":
                result = blobs.pull(
                    reg, f"/v2/{blobs.REPO}-mono/blobs/{digest}", size, 1000 // max(1, size >> 20)
                )
            elif args.workload == "docker":
                t0 = time.perf_counter()
                d.push(ref)
                result = {"docker_push_seconds": time.perf_counter() - t0}
            else:
                result = concurrent.run(ctx, lambda: reg)
        rec.wait(timeout=args.seconds + 60)
        (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
        if raw.exists():
            (out / "summary.txt").write_text(summarize(raw))
            print((out / "summary.txt").read_text()[:6000])
            procs.run(["gzip", "-9", "-f", raw])  # collapsed stacks: keep, but small
        print(f"profile in {out}")
    finally:
        if rec is not None and rec.poll() is None:
            rec.terminate()
        peer.teardown()
        peer.remove_data()
        docker.stop(ctx)
        blob = ctx.shared.get("blob")
        if blob is not None:
            blob[0].unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
