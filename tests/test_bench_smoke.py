"""Smoke run of the benchmark harness (bench/, docs/benchmarks.md) so that it does not rot.

Runs ``python -m bench.run --smoke`` (1 MiB blobs, 1 s load runs, 100 tags and
repositories, 20 concurrent pushes) against Berth (embedded, and scaled out on
its own PostgreSQL and Redis) and CNCF Distribution 2.8 (plus nginx, the pull
limit) and checks that every workload produced sane,
verified results and that the report renders. No Pulp and no Go-built peers:
those are for full runs (``make bench``). The harness installs Debian's
docker-registry, wrk, apache2-utils and nginx if they are missing (as root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dbindependent  # starts its own registries and databases

REPO = Path(__file__).resolve().parent.parent
PEERS = ["nginx", "distribution-2.8", "berth", "berth-scaled", "berth-nginx"]
# Replication starts registries of its own: test_bench_replication_smoke runs it.
WORKLOADS = "startup,blobs,manifests,concurrent,concurrent_quota,listing,portal,rss"


def test_bench_smoke(tmp_path: Path) -> None:
    needed = ["docker-registry", "wrk", "ab", "nginx", "redis-server"]
    if os.geteuid() != 0 and not all(shutil.which(t) for t in needed):
        pytest.skip(f"needs {', '.join(needed)} (or root to install them)")
    cmd = [
        sys.executable, "-m", "bench.run", "--smoke", "--only", ",".join(PEERS),
        "--workloads", WORKLOADS, "--out", str(tmp_path), "--no-render",
        "--berth-python", sys.executable,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=480)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the harness stops its registries on SIGTERM
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"bench smoke run timed out:\n{out[-6000:]}")
    assert proc.returncode == 0, out[-8000:]

    (run,) = [p for p in tmp_path.iterdir() if (p / "run.json").exists()]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "done" and meta["profile"] == "smoke"
    assert meta["sha256"]["Bps"] > 1e7
    assert meta["machine"]["nproc"] >= 1

    nginx = json.loads((run / "nginx.json").read_text())
    assert nginx["status"] == "ok", nginx
    assert nginx["workloads"]["blobs"]["pull_verified"] is True
    assert nginx["workloads"]["blobs"]["pull"]["best_Bps"] > 0

    size = meta["sizes"]["blob_size"]
    for name in ("distribution-2.8", "berth", "berth-scaled", "berth-nginx"):
        res = json.loads((run / f"{name}.json").read_text())
        assert res["status"] == "ok", (name, res.get("reason"), res.get("errors"))
        w = res["workloads"]
        assert 0 < w["startup"]["warm_seconds"] < 120
        assert 0 < w["startup"]["cold_seconds"] < 120

        blobs = w["blobs"]
        assert blobs["size"] == size
        assert blobs["pull_verified"] is True
        assert blobs["pull"]["bytes"] == size
        for kind in ("push_monolithic", "push_chunked", "push_streamed"):
            assert blobs[kind]["Bps"] > 0, (name, kind, blobs[kind])
        # The chunked push sends the file behind a 16-byte prefix: one more PATCH.
        assert blobs["push_chunked"]["patches"] == size // meta["sizes"]["chunk_size"] + 1

        runs = w["manifests"]["runs"]
        for method in ("GET", "HEAD"):
            for conns in meta["sizes"]["wrk_connections"]:
                r = runs[f"{method} c={conns}"]
                assert r["valid"] and r["rps"] > 0 and r["requests"] > 0, (name, method, r)
                assert r["p50_ms"] >= 0 and r["p99_ms"] >= r["p50_ms"]
                assert 0 <= r["steal_share"] <= 1, (name, method, r)
        for workload in ("blobs", "manifests", "concurrent", "listing"):
            assert 0 <= w[workload]["steal_share"] <= 1, (name, workload)
        assert 0 <= res["foreign_cpu"]["steal_share"] <= 1

        conc = w["concurrent"]
        assert conc["ok"] == conc["pushes"] == meta["sizes"]["concurrent_pushes"], conc
        quota_on = w["concurrent_quota"]
        if name == "distribution-2.8":
            assert quota_on == {**quota_on, "skipped": "no Harbor quota API"}, quota_on
        else:
            assert quota_on["ok"] == quota_on["pushes"] == conc["pushes"], quota_on
            assert quota_on["storage_limit"] > 0
        if name == "berth-scaled":  # on PostgreSQL: its lock waits were sampled
            assert quota_on["lock_waits"]["samples"] > 0, quota_on
            assert conc["lock_waits"]["samples"] > 0, conc

        listing = w["listing"]
        assert listing["tags"]["complete"], listing["tags"]
        assert listing["tags"]["largest"]["entries"] == meta["sizes"]["list_tags"]
        assert listing["catalog"]["complete"], listing["catalog"]
        # The catalog also holds the repositories the other workloads pushed to.
        assert listing["catalog"]["largest"]["entries"] >= meta["sizes"]["list_repos"]

        portal = w["portal"]
        if name.startswith("berth"):  # every page answered 200, as both users
            assert portal["artifacts"] == meta["sizes"]["portal_artifacts"], portal
            assert {p["who"] for p in portal["pages"]} == {"admin", "portaldev"}
            assert all(p["median_ms"] > 0 for p in portal["pages"]), portal
        else:
            assert portal["skipped"] == "the portal is Berth's"

        assert res["memory_idle"]["rss"] > 0 and res["memory_idle"]["processes"] >= 1
        assert res["memory_peak"]["rss"] >= res["memory_idle"]["rss"] * 0.5

    berth = json.loads((run / "berth.json").read_text())
    assert berth["memory_idle"]["processes"] >= 2  # web server plus the job worker/scheduler

    from bench import render

    doc = render.render(run)
    assert "## Targets" in doc and "manifest GET by tag" in doc
    # Issue 19's table: without Distribution v3 in the run, only Berth's own rows.
    assert "## Targets (issue 19: against Distribution v3)" in doc
    assert "| start to first 200 on /v2/ (first start) | ≤ 2 s |" in doc
    assert "Berth" in doc and "Distribution 2.8" in doc
    assert "The same pushes into a project with a storage limit" in doc
    assert "| steal (Berth / reference) |" in doc and "steal c=64" in doc


def test_bench_replication_smoke(tmp_path: Path) -> None:
    """The replication workload (``make bench`` runs it as ``replication``) at
    its smoke sizes, through its own entry point: every copy, Berth's and
    skopeo's, read back at its destination; the report's section renders."""
    needed = ["docker-registry", "skopeo"]
    if not all(shutil.which(t) for t in needed):
        pytest.skip(f"needs {', '.join(needed)}")
    cmd = [sys.executable, "-m", "bench.replication", "--smoke", "--out", str(tmp_path)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    (run,) = [p for p in tmp_path.iterdir() if (p / "replication.json").exists()]
    sizes = json.loads((run / "run.json").read_text())["sizes"]
    res = json.loads((run / "replication.json").read_text())
    assert res["status"] == "ok", res
    assert (res["images"], res["layers"], res["tags"]) == (
        sizes["repl_images"],
        sizes["repl_layers"],
        sizes["repl_tags"],
    )
    for key in ("images_to_berth", "images_to_distribution"):
        row = res[key]
        assert row["verified"] and row["skopeo_verified"], (key, row)
        assert row["tasks"] == sizes["repl_images"], (key, row)
        assert row["berth_seconds"] > 0 and row["skopeo_seconds"] > 0 and row["ratio"] > 0
    rerun = res["rerun"]
    assert rerun["verified"] and rerun["berth_seconds"] > 0 and rerun["skopeo_seconds"] > 0
    big = res["big"]
    assert big["verified"] is True, big
    assert big["peak_rss"] > 0 and big["by_process"], big

    from bench import render

    parts: list[str] = []
    render.replication_section(run, parts.append)
    doc = "\n".join(parts)
    assert "## Replication" in doc and "Berth → Distribution, first copy" in doc
    assert "—" not in doc.split("## Replication", 1)[1], doc  # every number present


def test_steal_is_read_from_the_cpu_line_of_proc_stat() -> None:
    from bench.procs import _TICK, parse_cpu_line

    # user nice system idle iowait irq softirq steal guest guest_nice
    busy, steal, total = parse_cpu_line("cpu  100 0 50 700 20 5 5 120 0 0\n")
    assert (busy * _TICK, steal * _TICK, total * _TICK) == (160, 120, 1000)
    # Old kernels print fewer columns: no steal column means no steal.
    busy, steal, total = parse_cpu_line("cpu  100 0 50 700\n")
    assert (busy * _TICK, steal * _TICK, total * _TICK) == (150, 0, 850)


def test_paired_ab_measures_both_trees_in_turn() -> None:
    """``python -m bench.ab``: a revision's worktree and this tree served at once,
    rounds alternating between them, for both workloads, embedded and scaled out."""
    if not shutil.which("wrk"):
        pytest.skip("needs wrk")
    for workload in (
        ["--seconds", "1"],
        ["--workload", "push", "--pushes", "4"],
        # The scaled-out peer: a PostgreSQL and a Redis of its own for each side.
        ["--workload", "push", "--pushes", "4", "--peer", "berth-scaled"],
    ):
        cmd = [
            sys.executable, "-m", "bench.ab", "HEAD", "--rounds", "2",
            "--python", sys.executable, *workload,
        ]  # fmt: skip
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        lines = r.stdout.splitlines()
        # Round 0 measures A then B, round 1 B then A; each value is positive.
        for n, first in ((0, "A"), (1, "B")):
            (line,) = [x for x in lines if x.startswith(f"round  {n}:")]
            sides = line.split(":", 1)[1].split("|")
            assert [s.split()[0] for s in sides] == [first, "B" if first == "A" else "A"]
            assert all(float(s.split()[1]) > 0 for s in sides), line
        assert "B/A per round: median" in lines[-1] or "B/A per round: median" in lines[-2]
