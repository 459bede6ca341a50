"""``docker push`` and ``docker pull`` of a 10-layer image: wall time.

A private dockerd (tests/clients' DockerDaemon: vfs storage, no network
setup) is started once per run. For every registry, a few times over
(``docker_pushes``), a fresh FROM-scratch image with 10 layers of random bytes
is built (untimed), pushed (timed) under its own tag and removed locally; the
last one is then pulled back (timed) ``docker_pulls`` times, removed before
each. The medians are the results, every run is kept. Where the registry asked
for credentials the daemon logs in first (docker runs the token flow itself).
"""

from __future__ import annotations

import shutil
import statistics
import time
from typing import Any

from bench.client import Registry
from bench.context import Context
from bench.peers.base import Peer, apt_install


def dockerd(ctx: Context) -> Any:
    from tests.clients import DockerDaemon

    if "dockerd" not in ctx.shared:
        if not (shutil.which("dockerd") and shutil.which("docker")):
            apt_install(ctx, "docker.io")
        ctx.shared["dockerd"] = DockerDaemon().start(ctx.workdir / "docker")
    return ctx.shared["dockerd"]


def stop(ctx: Context) -> None:
    d = ctx.shared.pop("dockerd", None)
    if d is not None:
        d.stop()


def run(ctx: Context, peer: Peer, reg: Registry) -> dict[str, Any]:
    from tests.clients import build_scratch_image

    d = dockerd(ctx)
    layers = ctx.p["docker_layers"]
    size = ctx.p["docker_layer_size"]
    # Learn whether the registry challenges (when this workload runs alone, no
    # earlier request has told the client yet): log in only where it does.
    reg.request("GET", "/v2/")
    if peer.creds and reg.auth_mode != "none":
        d.login(peer.host, *peer.creds)
    # Each push is of a new image (new random layers, its own tag in the same
    # repository: nothing to skip or mount), built before the clock starts; one
    # push's wall time swings by a second here, so the median counts.
    pushes = []
    for i in range(ctx.p["docker_pushes"]):
        ref = f"{peer.host}/dock/app:{i + 1}"
        image_id = build_scratch_image(
            d, ref, ctx.workdir / "docker-build", layers=layers, layer_size=size, timeout=900
        )
        t0 = time.perf_counter()
        digest = d.push(ref, timeout=1200)
        pushes.append(time.perf_counter() - t0)
        d.rmi(ref)
    push_s = statistics.median(pushes)
    # The last image, pulled a few times, removed before each pull.
    pulls = []
    for _ in range(ctx.p["docker_pulls"]):
        t0 = time.perf_counter()
        pulled = d.pull(ref, timeout=1200)
        pulls.append(time.perf_counter() - t0)
        d.rmi(ref)
        if pulled != image_id:
            raise RuntimeError(f"docker pulled image {pulled}, pushed {image_id}")
    pull_s = statistics.median(pulls)
    ctx.log(
        f"  docker push {push_s:.2f} s (median of {', '.join(f'{x:.2f}' for x in pushes)}), "
        f"pull {pull_s:.2f} s (median of {', '.join(f'{x:.2f}' for x in pulls)}; "
        f"{layers} x {size} B layers)"
    )
    return {
        "layers": layers,
        "layer_size": size,
        "push_seconds": push_s,
        "push_runs": pushes,
        "pull_seconds": pull_s,
        "pull_runs": pulls,
        "digest": digest,
        "login": bool(peer.creds and reg.auth_mode != "none"),
    }
