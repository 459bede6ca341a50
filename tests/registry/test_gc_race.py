"""A push racing garbage collection never loses a layer (docs/gc.md).

A live Berth (web and Celery worker) takes pushes, pulls and deletes from
several threads while garbage collection runs again and again through Harbor's
API with a time window of zero: no time protects anything, only the states and
locks do. Layers are shared between pushes and repositories, so collection is
forever deleting blobs that the next push uploads, mounts or finds by HEAD.
Then every acknowledged push that was not deleted pulls with the right
digests, and ``registry_check`` passes. On the filesystem and on S3 (MinIO);
on SQLite and, in ``make test``'s second pass, PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from dataclasses import dataclass, field

import pytest
import requests

from tests.conftest import ADMIN, BerthServer
from tests.support import wait_until

from .helpers import OCI_MANIFEST, image, sha256

pytestmark = pytest.mark.live

REPOS = [f"gcrace/r{i}" for i in range(3)]
GC_ROUNDS = 6
MIN_PUSHES = 40


@dataclass
class Push:
    repo: str
    tag: str
    digest: str
    body: bytes
    blobs: dict[str, bytes]


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[Push] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # manifest digests
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def fail(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def code(r: requests.Response) -> str:
    try:
        return r.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError):
        return ""


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.auth = ADMIN

    def upload(self, repo: str, digest: str, data: bytes, rng: random.Random) -> bool:
        """As docker does: HEAD, else mount from another repository, else upload."""
        if self.http.head(f"{self.url}/v2/{repo}/blobs/{digest}").status_code == 200:
            return True
        if rng.random() < 0.5:
            source = rng.choice([r for r in REPOS if r != repo])
            r = self.http.post(
                f"{self.url}/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source}
            )
            if r.status_code == 201:
                return True
            if r.status_code != 202:
                raise AssertionError(f"mount: {r.status_code} {r.text}")
        r = self.http.post(
            f"{self.url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data
        )
        if r.status_code == 429:  # collection was deleting these very bytes
            return False
        if r.status_code != 201:
            raise AssertionError(f"upload: {r.status_code} {r.text}")
        return True

    def pull(self, push: Push) -> str | None:
        """None when the push pulls whole, else what went wrong."""
        r = self.http.get(
            f"{self.url}/v2/{push.repo}/manifests/{push.tag}", headers={"Accept": OCI_MANIFEST}
        )
        if r.status_code != 200:
            return f"manifest {push.repo}:{push.tag}: {r.status_code} {r.text[:200]}"
        if sha256(r.content) != push.digest:
            return f"manifest {push.repo}:{push.tag}: wrong digest"
        for digest in push.blobs:
            r = self.http.get(f"{self.url}/v2/{push.repo}/blobs/{digest}")
            if r.status_code != 200:
                return f"blob {push.repo}@{digest}: {r.status_code} {r.text[:200]}"
            if "sha256:" + hashlib.sha256(r.content).hexdigest() != digest:
                return f"blob {push.repo}@{digest}: wrong bytes"
        return None


def pusher(url: str, ledger: Ledger, pool: list[bytes], seed: int) -> None:
    rng = random.Random(seed)
    client = Client(url)
    n = 0
    while not ledger.stop.is_set():
        n += 1
        repo = rng.choice(REPOS)
        config = json.dumps({"architecture": "amd64", "seed": seed, "n": n}).encode()
        body, blobs = image(config=config, layers=rng.sample(pool, 2))
        try:
            if not all(client.upload(repo, d, data, rng) for d, data in blobs.items()):
                with ledger.lock:
                    ledger.refused += 1
                continue
            tag = f"s{seed}-{n}"
            r = client.http.put(
                f"{url}/v2/{repo}/manifests/{tag}",
                data=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
        except (AssertionError, requests.RequestException) as exc:
            ledger.fail(f"push: {exc}")
            continue
        if r.status_code == 201:
            if r.headers["Docker-Content-Digest"] != sha256(body):
                ledger.fail(f"push {repo}:{tag}: digest {r.headers['Docker-Content-Digest']}")
            with ledger.lock:
                ledger.acknowledged.append(Push(repo, tag, sha256(body), body, blobs))
        elif r.status_code == 400 and code(r) == "MANIFEST_BLOB_UNKNOWN":
            # Collection took a layer between its upload and this manifest:
            # refused, never acknowledged (a client pushes it again).
            with ledger.lock:
                ledger.refused += 1
        else:
            ledger.fail(f"manifest put {repo}:{tag}: {r.status_code} {r.text[:300]}")


def deleter(url: str, ledger: Ledger, seed: int) -> None:
    """Deletes manifests by digest, or only their tag (leaving them untagged
    for delete_untagged), recording them first."""
    rng = random.Random(seed)
    client = Client(url)
    while not ledger.stop.wait(0.01):  # a pace, not a condition: deletes spread over the run
        with ledger.lock:
            live = [p for p in ledger.acknowledged if p.digest not in ledger.deleted]
            if len(live) < 2:
                continue
            victim = rng.choice(live)
            ledger.deleted.add(victim.digest)
        ref = victim.digest if rng.random() < 0.5 else victim.tag
        r = client.http.delete(f"{url}/v2/{victim.repo}/manifests/{ref}")
        if r.status_code != 202:
            ledger.fail(f"delete {victim.repo}@{ref}: {r.status_code} {r.text[:200]}")


def puller(url: str, ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    client = Client(url)
    while not ledger.stop.is_set():
        with ledger.lock:
            if not ledger.acknowledged:
                continue
            push = rng.choice(ledger.acknowledged)
            if push.digest in ledger.deleted:
                continue
        problem = client.pull(push)
        with ledger.lock:
            gone = push.digest in ledger.deleted
        if problem and not gone:
            ledger.fail(f"pull while racing: {problem}")


def collect(server: BerthServer) -> dict:
    """One garbage collection through Harbor's API, waited for."""
    http = server.http
    body = {
        "schedule": {"type": "Manual"},
        "parameters": {"delete_untagged": True, "time_window": 0, "workers": 3},
    }
    r = http.post(f"{server.url}/api/v2.0/system/gc/schedule", json=body)
    assert r.status_code == 201, r.text
    location = server.url + r.headers["Location"]
    wait_until(
        lambda: http.get(location).json()["job_status"] not in ("Pending", "Running"),
        what="garbage collection finished",
        timeout=300,
    )
    job = http.get(location).json()
    assert job["job_status"] == "Success", http.get(location + "/log").text
    return {"log": http.get(location + "/log").text}


def blobs_deleted(log: str) -> int:
    for line in log.splitlines():
        if " blobs deleted: " in line:
            return int(line.split(" blobs deleted: ")[1].split(",")[0])
    raise AssertionError(f"no blob count in {log}")


def race(server: BerthServer) -> None:
    server.create_projects(["gcrace"])
    pool = [os.urandom(random.randint(500, 40_000)) for _ in range(5)]
    ledger = Ledger()
    threads = [
        *(threading.Thread(target=pusher, args=(server.url, ledger, pool, s)) for s in range(3)),
        threading.Thread(target=deleter, args=(server.url, ledger, 100)),
        threading.Thread(target=puller, args=(server.url, ledger, 200)),
    ]
    for t in threads:
        t.start()
    freed = 0
    try:
        for _ in range(GC_ROUNDS):
            freed += blobs_deleted(collect(server)["log"])
        wait_until(lambda: len(ledger.acknowledged) >= MIN_PUSHES, what="pushes", timeout=300)
    finally:
        ledger.stop.set()
        for t in threads:
            t.join()
    freed += blobs_deleted(collect(server)["log"])

    assert ledger.errors == []
    assert freed > 0, "collection never freed a blob: the race was not run"
    client = Client(server.url)
    kept = [p for p in ledger.acknowledged if p.digest not in ledger.deleted]
    assert kept
    problems = [problem for p in kept if (problem := client.pull(p))]
    assert problems == []
    check = server.manage("registry_check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    print(
        f"acknowledged {len(ledger.acknowledged)}, deleted {len(ledger.deleted)}, "
        f"refused {ledger.refused}, blobs freed {freed}"
    )


RACE_ENV = {
    "BERTH_GC_MIN_WINDOW": "0",
    "BERTH_GC_TOUCH_INTERVAL": "0",
    "BERTH_GC_UPLOAD_WAIT": "20",
    # Marked blobs wait before their bytes go: pushes of those very bytes
    # arrive in between.
    "BERTH_GC_SWEEP_PAUSE": "0.3",
}


def test_gc_racing_pushes_pulls_and_deletes_on_the_filesystem(tmp_path):
    server = BerthServer(tmp_path / "data", role="all", env=RACE_ENV).start()
    try:
        race(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def minio():
    from tests.s3 import shared_minio

    return shared_minio()


def test_gc_racing_pushes_pulls_and_deletes_on_s3(minio, tmp_path):
    from tests.s3 import new_bucket_name

    url = (
        f"s3://{new_bucket_name()}/berth?endpoint={minio.endpoint}&region=us-east-1&path_style=true"
    )
    env = {**RACE_ENV, "BERTH_STORAGE_URL": url, **minio.credentials_env}
    server = BerthServer(tmp_path / "data", role="all", env=env).start()
    try:
        race(server)
    finally:
        server.stop()
