"""Replication (issue 17): Berth's copy engine against ``skopeo sync`` doing
the same copy on the same machine.

Berth only (a run-level workload: it starts its own registries rather than
using the peer under test). A source Berth (``manage.py serve``, all roles,
its own data directory) and four destinations: a Berth and a CNCF
Distribution for Berth's replication, another of each for ``skopeo sync``.

- ``images``: ``repl_images`` images of ``repl_layers`` random layers of
  ``repl_layer_size`` bytes, copied Berth → Berth and Berth → Distribution by
  a manual push policy (wall time from the execution's start until the API
  says it ended), and by ``skopeo sync`` from the same source; the ratio.
- ``rerun``: ``repl_tags`` tags (one small image each, ten tags a repository)
  copied once, then copied again with nothing new: the seconds of that
  rerun, Berth's and skopeo's.
- ``big_layer``: one image whose layer is ``repl_big_layer`` bytes copied
  Berth → Berth while the source's processes are sampled: the peak RSS of
  each, and how far the largest grew over its RSS before the copy (the copy
  streams in chunks: that growth is bounded by the chunk, not the layer).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from bench import procs
from bench.context import Context

ENV = {"BERTH_EVENT_SWEEP_SECONDS": "1", "BERTH_REPLICATION_TICK_SECONDS": "2"}


def api(server: Any, method: str, path: str, body: Any = None) -> requests.Response:
    r = server.http.request(method, f"{server.url}/api/v2.0{path}", json=body, timeout=120)
    if r.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
    return r


def _id(r: requests.Response) -> int:
    return int(r.headers["Location"].rsplit("/", 1)[1])


def fill_images(
    source: Any, project: str, images: int, layers: int, size: int
) -> dict[str, list[str]]:
    from tests.registry.helpers import Remote

    pusher = Remote(source.url)
    names: dict[str, list[str]] = {}
    for i in range(images):
        repo = f"{project}/img{i:04d}"
        pusher.push_image(repo, "v1", layers=[os.urandom(size) for _ in range(layers)])
        names[repo] = ["v1"]
    return names


def fill_tags(source: Any, project: str, tags: int) -> dict[str, list[str]]:
    """``tags`` small images, ten tags a repository."""
    from tests.registry.helpers import Remote

    pusher = Remote(source.url)
    names: dict[str, list[str]] = {}
    for i in range(tags):
        repo = f"{project}/r{i // 10:04d}"
        tag = f"t{i % 10}"
        pusher.push_image(repo, tag, layers=[os.urandom(1024)])
        names.setdefault(repo, []).append(tag)
    return names


def push_big(source: Any, repo: str, size: int) -> tuple[str, str]:
    """An image of one ``size``-byte layer streamed in (never held here):
    (layer digest, manifest digest)."""
    from tests.conftest import ADMIN
    from tests.registry.helpers import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Remote, descriptor
    from tests.replication.conftest import push_big_blob

    layer = push_big_blob(source.url, ADMIN, repo, size)
    config = b'{"architecture": "amd64"}'
    pusher = Remote(source.url)
    pusher.put_blob(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": size}],
        }
    ).encode()
    r = pusher.put_manifest(repo, "v1", manifest)
    if r.status_code != 201:
        raise RuntimeError(f"pushing the big image: {r.status_code} {r.text[:300]}")
    return layer, r.headers["Docker-Content-Digest"]


def policy(source: Any, name: str, dest: Any, kind: str, project: str) -> int:
    from tests.conftest import ADMIN

    body: dict[str, Any] = {"name": name, "type": kind, "url": dest.url}
    if kind == "berth":
        body["credential"] = {"type": "basic", "access_key": ADMIN[0], "access_secret": ADMIN[1]}
    registry = _id(api(source, "POST", "/registries", body))
    return _id(
        api(
            source,
            "POST",
            "/replication/policies",
            {
                "name": name,
                "dest_registry": {"id": registry},
                "filters": [{"type": "name", "value": f"{project}/**"}],
                "enabled": True,
            },
        )
    )


def execute(source: Any, policy_id: int) -> tuple[float, dict[str, Any]]:
    """Start an execution and wait for its end: (seconds, the execution)."""
    started = time.monotonic()
    eid = _id(api(source, "POST", "/replication/executions", {"policy_id": policy_id}))
    while True:
        body = api(source, "GET", f"/replication/executions/{eid}").json()
        if body["status"] != "InProgress":
            elapsed = time.monotonic() - started
            if body["status"] != "Succeed":
                failed = api(source, "GET", f"/replication/executions/{eid}/tasks?status=Failed")
                if failed.json():
                    first = failed.json()[0]["id"]
                    log = api(source, "GET", f"/replication/executions/{eid}/tasks/{first}/log")
                    body["first_failure"] = log.text[-2000:]
                raise RuntimeError(f"execution {eid} ended {body['status']}: {body}")
            return elapsed, body
        time.sleep(0.1)


def skopeo_sync(source: Any, dest: Any, names: dict[str, list[str]], work: Path) -> float:
    from tests.conftest import ADMIN

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
    creds = ["--dest-creds", ":".join(ADMIN)] if hasattr(dest, "http") else []
    # skopeo names a copy after the last part of its source's name, under the
    # destination given: the project again, so the copies keep their names.
    project = next(iter(names)).split("/", 1)[0]
    started = time.monotonic()
    done = subprocess.run(
        [
            "skopeo", "sync", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", *creds,
            str(config), f"{dest.url.removeprefix('http://')}/{project}",
        ],
        check=False, capture_output=True, text=True, timeout=6 * 3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"skopeo sync failed: {done.stderr[-2000:]}")
    return time.monotonic() - started


def _same_tags(dest: Any, names: dict[str, list[str]]) -> bool:
    """Every tag arrived (read back through the destination's /v2)."""
    from tests.conftest import ADMIN

    http = requests.Session()
    http.auth = ADMIN if hasattr(dest, "http") else None
    for repo, tags in names.items():
        r = http.get(f"{dest.url}/v2/{repo}/tags/list", timeout=60)
        if r.status_code != 200 or not set(tags) <= set(r.json().get("tags") or []):
            return False
    return True


class Peaks:
    """Samples the RSS of each process of a tree in a thread: each one's peak,
    and its RSS when sampling began."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.before: dict[int, int] = {}
        self.peak: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> list[dict[str, Any]]:
        return list(procs.memory([self.root])["by_process"])

    def __enter__(self) -> Peaks:
        self.before = {p["pid"]: p["rss"] for p in self._sample()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for p in self._sample():
                _, seen = self.peak.get(p["pid"], ("", 0))
                self.peak[p["pid"]] = (p["name"], max(seen, p["rss"]))
            self._stop.wait(self.interval)

    def result(self) -> dict[str, Any]:
        rows = [
            {"pid": pid, "name": name, "rss_before": self.before.get(pid), "peak_rss": rss}
            for pid, (name, rss) in self.peak.items()
        ]
        grown = [r["peak_rss"] - r["rss_before"] for r in rows if r["rss_before"] is not None]
        return {
            "by_process": sorted(rows, key=lambda r: -r["peak_rss"]),
            "peak_rss": max((r["peak_rss"] for r in rows), default=0),
            "largest_growth": max(grown, default=0),
        }


def run(ctx: Context) -> dict[str, Any]:
    from tests.clients.distribution import DistributionRegistry
    from tests.conftest import BerthServer

    p = ctx.p
    work = ctx.workdir / "replication"
    work.mkdir(parents=True, exist_ok=True)
    skopeo = shutil.which("skopeo") is not None
    res: dict[str, Any] = {
        "images": p["repl_images"],
        "layers": p["repl_layers"],
        "layer_size": p["repl_layer_size"],
        "tags": p["repl_tags"],
        "big_layer": p["repl_big_layer"],
        "skopeo": procs.run(["skopeo", "--version"], check=False).stdout.strip()
        if skopeo
        else "not installed",
    }
    berths = {n: BerthServer(work / n / "data", role="all", env=ENV) for n in ("src", "dst", "sky")}
    dists: dict[str, Any] = {}
    try:
        for server in berths.values():
            server.start(timeout=180)
            server.create_projects(["repl", "many", "big"])
        for n in ("dst", "sky"):
            dists[n] = DistributionRegistry().start(work / f"dist-{n}")
        src = berths["src"]

        t0 = time.monotonic()
        names = fill_images(src, "repl", p["repl_images"], p["repl_layers"], p["repl_layer_size"])
        res["fill_seconds"] = time.monotonic() - t0
        for label, dest, sky, kind in (
            ("berth", berths["dst"], berths["sky"], "berth"),
            ("distribution", dists["dst"], dists["sky"], "docker-registry"),
        ):
            ctx.log(f"  replication: {p['repl_images']} images Berth → {label}")
            pid = policy(src, f"images-{label}", dest, kind, "repl")
            seconds, execution = execute(src, pid)
            row: dict[str, Any] = {
                "berth_seconds": seconds,
                "tasks": execution["total"],
                "verified": _same_tags(dest, names),
            }
            if skopeo:
                row["skopeo_seconds"] = skopeo_sync(src, sky, names, work)
                row["skopeo_verified"] = _same_tags(sky, names)
                row["ratio"] = seconds / row["skopeo_seconds"]
            res[f"images_to_{label}"] = row

        ctx.log(f"  replication: a rerun over {p['repl_tags']} tags with nothing new")
        many = fill_tags(src, "many", p["repl_tags"])
        pid = policy(src, "many-tags", berths["dst"], "berth", "many")
        first, _ = execute(src, pid)
        again, execution = execute(src, pid)
        rerun: dict[str, Any] = {
            "first_seconds": first,
            "berth_seconds": again,
            "tasks": execution["total"],
            "verified": _same_tags(berths["dst"], many),
        }
        if skopeo:
            skopeo_sync(src, berths["sky"], many, work)
            rerun["skopeo_seconds"] = skopeo_sync(src, berths["sky"], many, work)
            rerun["ratio"] = again / rerun["skopeo_seconds"]
        res["rerun"] = rerun

        ctx.log(f"  replication: a {p['repl_big_layer'] >> 20} MiB layer, RSS sampled")
        layer, _ = push_big(src, "big/one", p["repl_big_layer"])
        pid = policy(src, "big-layer", berths["dst"], "berth", "big")
        assert src.proc is not None
        with Peaks(src.proc.pid) as peaks:
            seconds, _ = execute(src, pid)
        head = berths["dst"].http.head(f"{berths['dst'].url}/v2/big/one/blobs/{layer}", timeout=60)
        res["big"] = {
            "seconds": seconds,
            "verified": head.status_code == 200
            and int(head.headers.get("Content-Length", -1)) == p["repl_big_layer"],
            **peaks.result(),
        }
    finally:
        for server in berths.values():
            server.stop()
        for dist in dists.values():
            dist.stop()
        shutil.rmtree(work, ignore_errors=True)
    return res
