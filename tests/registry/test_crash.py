"""F40: SIGKILL the server at random moments of uploads, commits and manifest
PUTs, many times; after each restart registry_check passes and every push the
server acknowledged is intact."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN

from .helpers import OCI_MANIFEST, image, sha256

ROUNDS = int(os.environ.get("BERTH_CRASH_ROUNDS", "20"))


def pusher(url: str, stop: threading.Event, acked: dict[str, str], moving: list[str], seed: int):
    rng = random.Random(seed)
    s = requests.Session()
    s.auth = ADMIN
    n = 0
    while not stop.is_set():
        n += 1
        try:
            layers = [os.urandom(rng.randint(1, 400_000)) for _ in range(rng.randint(1, 3))]
            body, blobs = image(layers=layers)
            for data in blobs.values():
                loc = url + s.post(f"{url}/v2/crash/app/blobs/uploads/").headers["Location"]
                half = len(data) // 2
                s.patch(
                    loc, data=data[:half], headers={"Content-Range": f"0-{max(half - 1, 0)}"}
                ).raise_for_status()
                s.put(f"{loc}?digest={sha256(data)}", data=data[half:]).raise_for_status()
            tag = f"s{seed}-{n}"
            r = s.put(
                f"{url}/v2/crash/app/manifests/{tag}",
                data=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
            digest = sha256(body)
            moving.append(digest)  # in flight: the moving tag may end on it
            if r.status_code == 201:
                acked[tag] = digest
            r = s.put(
                f"{url}/v2/crash/app/manifests/moving",
                data=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
        except (requests.RequestException, OSError):
            return


@pytest.mark.slow
def test_f40_kill_minus_nine_loop(fresh_berth):
    rng = random.Random(40)
    acked: dict[str, str] = {}
    moving: list[str] = []
    for round_no in range(ROUNDS):
        fresh_berth.start()
        fresh_berth.create_projects(["crash"])
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=pusher, args=(fresh_berth.url, stop, acked, moving, round_no * 10 + i)
            )
            for i in range(3)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 1.5))
        fresh_berth.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) >= ROUNDS  # the loop really pushed things between the kills
    fresh_berth.start()
    check = fresh_berth.manage("registry_check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    s = requests.Session()
    s.auth = ADMIN
    for tag, digest in acked.items():
        r = s.get(f"{fresh_berth.url}/v2/crash/app/manifests/{tag}")
        assert r.status_code == 200, tag
        assert r.headers["Docker-Content-Digest"] == digest
        assert sha256(r.content) == digest
        manifest = r.json()
        for d in [manifest["config"], *manifest["layers"]]:
            blob = s.get(f"{fresh_berth.url}/v2/crash/app/blobs/{d['digest']}")
            assert blob.status_code == 200
            assert sha256(blob.content) == d["digest"]
    r = s.get(f"{fresh_berth.url}/v2/crash/app/manifests/moving")
    if r.status_code == 200:
        assert r.headers["Docker-Content-Digest"] in moving
