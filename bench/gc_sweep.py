"""Garbage collection of many orphan blobs with pushes running beside it:
``python -m bench.gc_sweep [--blobs 100000] [--workers 4] [--pushers 4]``.

A Berth (embedded default: SQLite, filesystem, worker in the same command) is
seeded with ``--blobs`` orphan blobs: small files in its blob directory and
their rows, created three hours ago (what deleted images leave behind). Pushers
push small images into their own repositories, first alone (the baseline), then
while a garbage collection run (Harbor's API, ``time_window`` 0, that is
BERTH_GC_MIN_WINDOW, here 60 s; ``workers``) sweeps the orphans. Measured: the sweep's
wall time and blobs per second (from the run's own timestamps), push latency
(median and p95) before and during the sweep, and the pushes' integrity after
(every acknowledged push pulls back). Results: bench/results/gc-<stamp>.json.
Part of ``make bench``; docs/benchmarks.md reports a run.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.client import Registry
from bench.context import REPO_ROOT, TMP_DIR
from bench.peers.base import clean_env

# A fresh admin password per run, as the harness's Berth peer makes one.
PASSWORD = "Bench" + secrets.token_hex(8) + "Z9"

SEED = r"""
import datetime, hashlib, os, sys
from concurrent.futures import ThreadPoolExecutor
import django
django.setup()
from django.utils import timezone
from registry.models import Blob
from registry.storage import blob_store

n = int(sys.argv[1])
store = blob_store()

def put_file(item):
    digest, data = item
    path = store._blob_path(digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)

def put_object(item):
    digest, data = item
    store._client().put_object(Bucket=store.bucket_name, Key=store._blob_key(digest), Body=data)

put = put_file if hasattr(store, "_blob_path") else put_object
with ThreadPoolExecutor(1 if put is put_file else 16) as pool:
    for start in range(0, n, 5000):
        items = []
        for i in range(start, min(n, start + 5000)):
            data = b"orphan %d " % i + os.urandom(16)
            items.append(("sha256:" + hashlib.sha256(data).hexdigest(), data))
        list(pool.map(put, items))
        Blob.objects.bulk_create([Blob(digest=d, size=len(b)) for d, b in items])
Blob.objects.update(created_at=timezone.now() - datetime.timedelta(hours=3))
print(Blob.objects.count())
"""


def api(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            method,
            "/api/v2.0" + path,
            body=json.dumps(body) if body is not None else None,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait(what: str, ready: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Pushers:
    """Threads pushing small images, each into its own repository."""

    def __init__(self, port: int, n: int) -> None:
        self.reg = Registry(f"http://127.0.0.1:{port}", ("admin", PASSWORD))
        self.n = n
        self.phase = "baseline"
        self.latencies: dict[str, list[float]] = {"baseline": [], "during": [], "after": []}
        self.pushed: list[tuple[str, str, str]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def _run(self, i: int) -> None:
        k = 0
        while not self.stop.is_set():
            k += 1
            name, tag = f"gcbench/p{i}", f"t{k}"
            t0 = time.monotonic()
            try:
                digest, _ = self.reg.push_small_image(
                    name, tag, os.urandom(4096), config=json.dumps({"p": i, "k": k}).encode()
                )
            except Exception as exc:
                with self.lock:
                    self.errors.append(f"{name}:{tag}: {exc!s:.300}")
                continue
            with self.lock:
                self.latencies[self.phase].append(time.monotonic() - t0)
                self.pushed.append((name, tag, digest))

    def __enter__(self) -> Pushers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--baseline-pushes", type=int, default=100)
    parser.add_argument("--python", default=sys.executable, help="Berth's Python")
    parser.add_argument(
        "--minio", action="store_true", help="blobs on a private MinIO (the peers' binary)"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = TMP_DIR / f"gc-{stamp}"
    data = workdir / "data"
    data.mkdir(parents=True)
    port = procs.free_port()
    env = clean_env(
        BERTH_DATA_DIR=str(data),
        BERTH_LOG_LEVEL="WARNING",
        BERTH_ADMIN_PASSWORD=PASSWORD,
        # The orphans are three hours old; the pushes beside the sweep are
        # protected by the window, as in production (time_window 0 means this).
        BERTH_GC_MIN_WINDOW="60",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    minio = None
    if args.minio:
        from tests.s3 import MinioServer

        minio = MinioServer().start()
        env.update(minio.credentials_env)
        env["BERTH_STORAGE_URL"] = (
            f"s3://gc-bench/berth?endpoint={minio.endpoint}&region=us-east-1&path_style=true"
        )
    server = procs.spawn(
        [args.python, "manage.py", "serve", "--addr", f"127.0.0.1:{port}"],
        log=workdir / "berth.log",
        env=env,
        cwd=REPO_ROOT,
    )
    result: dict[str, Any] = {
        "storage": "minio" if minio else "filesystem",
        "blobs": args.blobs,
        "workers": args.workers,
        "pushers": args.pushers,
    }
    try:
        wait("berth", lambda: _answers(port))
        t0 = time.monotonic()
        seeded = procs.run(
            [args.python, "-c", SEED, str(args.blobs)], env=env, cwd=REPO_ROOT, timeout=3600
        )
        result["seed_seconds"] = round(time.monotonic() - t0, 1)
        print(f"seeded {seeded.stdout.strip()} orphan blobs in {result['seed_seconds']} s")
        status, _, body = api(port, "POST", "/projects", {"project_name": "gcbench"})
        if status not in (201, 409):
            raise RuntimeError(f"project: {status} {body[:200]!r}")

        with Pushers(port, args.pushers) as pushers:
            wait(
                "baseline pushes",
                lambda: len(pushers.latencies["baseline"]) >= args.baseline_pushes,
            )
            pushers.phase = "during"
            status, headers, body = api(
                port,
                "POST",
                "/system/gc/schedule",
                {
                    "schedule": {"type": "Manual"},
                    "parameters": {
                        "time_window": 0,
                        "workers": args.workers,
                        "delete_untagged": False,
                    },
                },
            )
            if status != 201:
                raise RuntimeError(f"gc: {status} {body[:300]!r}")
            job_path = headers["location"].removeprefix("/api/v2.0")
            wait("the sweep", lambda: _finished(port, job_path), timeout=7200)
            pushers.phase = "after"
            wait("pushes after", lambda: len(pushers.latencies["after"]) >= args.pushers)
        _, _, body = api(port, "GET", job_path)
        job = json.loads(body)
        _, _, log = api(port, "GET", job_path + "/log")
        started, ended = _times(log.decode())
        sweep = ended - started
        freed = _blobs_deleted(log.decode())
        result.update(
            {
                "job_status": job["job_status"],
                "sweep_seconds": round(sweep, 2),
                "blobs_deleted": freed,
                "blobs_per_second": round(freed / sweep) if sweep > 0 else None,
                "push_baseline": summary(pushers.latencies["baseline"]),
                "push_during_sweep": summary(pushers.latencies["during"]),
                "push_errors": pushers.errors[:20],
                "pushes": len(pushers.pushed),
            }
        )
        lost = [
            f"{name}:{tag}"
            for name, tag, digest in pushers.pushed
            if pushers.reg.request("HEAD", f"/v2/{name}/manifests/{digest}", expect=None).status
            != 200
        ]
        result["pushes_lost"] = lost[:20]
        check = procs.run(
            [args.python, "manage.py", "registry_check", "--sample", "0.01"],
            env=env,
            cwd=REPO_ROOT,
            check=False,
            timeout=3600,
        )
        result["registry_check_ok"] = check.returncode == 0
    finally:
        procs.stop(server)
        if minio is not None:
            minio.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"gc-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = (
        result.get("job_status") == "Success"
        and not result.get("pushes_lost")
        and not result.get("push_errors")
        and result.get("registry_check_ok")
    )
    return 0 if ok else 1


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/v2/")
        return conn.getresponse().status in (200, 401)
    except OSError:
        return False


def _finished(port: int, job_path: str) -> bool:
    _, _, body = api(port, "GET", job_path)
    return json.loads(body)["job_status"] not in ("Pending", "Running")


def _times(log: str) -> tuple[float, float]:
    """The first and last timestamps of the run's log (seconds)."""
    stamps = [dt.datetime.fromisoformat(line.split(" ", 1)[0]) for line in log.splitlines() if line]
    return stamps[0].timestamp(), stamps[-1].timestamp()


def _blobs_deleted(log: str) -> int:
    for line in log.splitlines():
        if " blobs deleted: " in line:
            return int(line.split(" blobs deleted: ")[1].split(",")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
