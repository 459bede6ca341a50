"""Replication Berth → Berth against ``skopeo sync`` doing the same copy on the
same machine, and a rerun with nothing new.

    .venv/bin/python -m bench.replication --images 100 --layers 10 --layer-kib 64

Three Berths (``serve``, all roles, each its own data directory): a source
filled with IMAGES images of LAYERS random layers, a destination for Berth's
replication (a manual push policy through Harbor's API), another for
``skopeo sync``. Prints and writes ``bench/results/<stamp>-replication.json``:
wall times of the first copy, of the rerun (Berth: a new execution; skopeo:
the same sync again), and their ratios. Servers are started with the tests'
``BerthServer`` (tests/conftest.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.conftest import ADMIN, REPO_ROOT, BerthServer
from tests.registry.helpers import Remote, image

ENV = {"BERTH_EVENT_SWEEP_SECONDS": "1", "BERTH_REPLICATION_TICK_SECONDS": "2"}
# Distribution destinations (``--dest distribution``) run without auth.


def fill(source: BerthServer, images: int, layers: int, layer_kib: int) -> dict[str, list[str]]:
    pusher = Remote(source.url)
    names: dict[str, list[str]] = {}
    for i in range(images):
        repo = f"app/img{i:03d}"
        blobs = [os.urandom(layer_kib * 1024) for _ in range(layers)]
        pusher.push_image(repo, "v1", layers=blobs)
        names[repo] = ["v1"]
    return names


def api(server: BerthServer, method: str, path: str, body: Any = None) -> requests.Response:
    r = server.http.request(method, f"{server.url}/api/v2.0{path}", json=body, timeout=120)
    assert r.status_code < 300, r.text
    return r


def replicate(source: BerthServer, dest: Any, kind: str) -> tuple[int, Any]:
    body: dict[str, Any] = {"name": "dest", "type": kind, "url": dest.url}
    if kind == "berth":
        body["credential"] = {"type": "basic", "access_key": ADMIN[0], "access_secret": ADMIN[1]}
    registry = api(source, "POST", "/registries", body).headers["Location"].rsplit("/", 1)[1]
    policy = (
        api(
            source,
            "POST",
            "/replication/policies",
            {"name": "bench", "dest_registry": {"id": int(registry)}, "enabled": True},
        )
        .headers["Location"]
        .rsplit("/", 1)[1]
    )
    return int(policy), None


def run_execution(source: BerthServer, policy: int) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    location = api(source, "POST", "/replication/executions", {"policy_id": policy})
    eid = location.headers["Location"].rsplit("/", 1)[1]
    while True:
        body = api(source, "GET", f"/replication/executions/{eid}").json()
        if body["status"] != "InProgress":
            elapsed = time.monotonic() - started
            if body["status"] != "Succeed":
                tasks = api(source, "GET", f"/replication/executions/{eid}/tasks?status=Failed")
                if tasks.json():
                    first = tasks.json()[0]["id"]
                    log = api(source, "GET", f"/replication/executions/{eid}/tasks/{first}/log")
                    body["first_failure"] = log.text[-2000:]
            return elapsed, body
        time.sleep(0.2)


def skopeo_sync(
    source: BerthServer, dest: BerthServer, names: dict[str, list[str]], work: Path
) -> float:
    config = work / "sync.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                source.addr: {
                    "images": names,
                    "tls-verify": False,
                    "credentials": {"username": ADMIN[0], "password": ADMIN[1]},
                }
            }
        )
    )
    creds = ["--dest-creds", ":".join(ADMIN)] if isinstance(dest, BerthServer) else []
    started = time.monotonic()
    subprocess.run(
        [
            "skopeo", "sync", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", *creds,
            str(config), f"{dest.url.removeprefix('http://')}/app",
        ],
        check=True, capture_output=True, timeout=3600,
    )  # fmt: skip
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--layer-kib", type=int, default=64)
    parser.add_argument("--dest", choices=["berth", "distribution"], default="berth")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-repl-"))
    servers = [BerthServer(work / "src" / "data", role="all", env=ENV)]
    others: list[Any] = []
    if args.dest == "berth":
        servers += [BerthServer(work / n / "data", role="all", env=ENV) for n in ("dst", "sky")]
    try:
        for server in servers:
            server.start(timeout=120)
            server.create_projects(["app"])
        if args.dest == "berth":
            source, dest, sky = servers
        else:
            from tests.clients.distribution import DistributionRegistry

            source = servers[0]
            dest, sky = (DistributionRegistry().start(work / n) for n in ("dst", "sky"))
            others += [dest, sky]
        fill_started = time.monotonic()
        names = fill(source, args.images, args.layers, args.layer_kib)
        filled = time.monotonic() - fill_started
        policy, _ = replicate(source, dest, "berth" if args.dest == "berth" else "docker-registry")
        berth_first, first = run_execution(source, policy)
        berth_again, again = run_execution(source, policy)
        skopeo_first = skopeo_sync(source, sky, names, work)
        skopeo_again = skopeo_sync(source, sky, names, work)
        result = {
            "destination": args.dest,
            "images": args.images,
            "layers": args.layers,
            "layer_kib": args.layer_kib,
            "fill_seconds": round(filled, 2),
            "berth_seconds": round(berth_first, 2),
            "berth_execution": first,
            "berth_rerun_seconds": round(berth_again, 2),
            "berth_rerun_execution": again,
            "skopeo_sync_seconds": round(skopeo_first, 2),
            "skopeo_sync_rerun_seconds": round(skopeo_again, 2),
            "ratio_berth_to_skopeo": round(berth_first / skopeo_first, 2),
            "ratio_rerun": round(berth_again / skopeo_again, 2),
        }
        print(json.dumps(result, indent=2))
        out = REPO_ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}-replication.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        for server in servers:
            server.stop()
        for other in others:
            other.stop()


if __name__ == "__main__":
    main()


__all__ = ["image"]
