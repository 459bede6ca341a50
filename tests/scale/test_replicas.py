"""Three Berth replicas behind haproxy (round robin per request) on one
PostgreSQL, one S3 server (MinIO) and one Redis: pushes and pulls hopping
replicas, F38 and F39 across replicas, a replica killed under load, tag moves
seen by every replica at once (docs/scale-out.md, "Replicas")."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter

import pytest

from tests.conftest import ADMIN
from tests.crane import crane_for, file_in_export, one_file_layer
from tests.registry.helpers import image, sha256

from .client import Client, Stats

pytestmark = [pytest.mark.slow, pytest.mark.dbindependent]


def test_balancer_hops_replicas_for_every_request(cluster):
    c = Client(cluster.url)
    for _ in range(6):
        assert c.request("GET", "/v2/").status_code == 200
    # One client, one keep-alive connection: every request went elsewhere.
    assert set(c.served_by) == {"r1", "r2", "r3"}, c.served_by
    for i in range(1, 6):
        assert c.served_by[i] != c.served_by[i - 1], c.served_by


def test_chunked_upload_hops_replicas(cluster):
    c = Client(cluster.url)
    layer = os.urandom(3 * 1024 * 1024 + 17)
    body, blobs = image(layers=[layer])
    c.served_by.clear()
    digest = c.push_blob_chunked("scale/chunked", layer, chunk=512 * 1024)
    # POST, 7 PATCHes, PUT: on every replica.
    assert len(c.served_by) == 9
    assert set(c.served_by) == {"r1", "r2", "r3"}, c.served_by
    for data in blobs.values():
        if data is not layer:
            c.push_blob("scale/chunked", data)
    r = c.put_manifest("scale/chunked", "v1", body)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha256(body)
    # Read back through each replica directly, byte for byte.
    for replica in cluster.replicas:
        direct = Client(replica.url)
        r = direct.get_manifest("scale/chunked", "v1")
        assert r.status_code == 200 and r.content == body
        r = direct.get_blob("scale/chunked", digest)
        assert r.status_code == 200 and r.content == layer


def test_real_client_push_and_pull_through_the_balancer(cluster, tmp_path):
    """crane (token auth, POST/PATCH/PUT per layer) pushes and pulls through the
    balancer; every request of it may land elsewhere."""
    crane_run = crane_for(cluster.addr, ADMIN, tmp_path)
    payload = os.urandom(2 * 1024 * 1024)
    layer = one_file_layer(tmp_path / "layer.tar", "data/payload.bin", payload)
    ref = f"{cluster.addr}/scale/crane:v1"

    # Every replica in rotation first: a health check that failed under the
    # previous test's load takes a replica out for a few seconds.
    for replica in cluster.replicas:
        cluster.balancer.wait_status(replica.name, "UP")
    before = cluster.balancer.requests_per_replica()
    pushed = crane_run("append", "-f", str(layer), "-t", ref).decode().strip()
    digest = crane_run("digest", ref).decode().strip()
    assert pushed.endswith("@" + digest)
    crane_run("export", ref, str(tmp_path / "export.tar"))
    assert file_in_export(tmp_path / "export.tar", "data/payload.bin") == payload
    after = cluster.balancer.requests_per_replica()
    # crane's requests were spread over the replicas.
    assert all(after[r.name] > before[r.name] for r in cluster.replicas), (
        before,
        after,
        cluster.balancer.server_status(),
    )
    # The same manifest from every replica directly.
    for replica in cluster.replicas:
        r = Client(replica.url).request(
            "GET",
            "/v2/scale/crane/manifests/v1",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert r.status_code == 200
        assert r.headers["Docker-Content-Digest"] == digest == sha256(r.content)


def test_f38_concurrent_pushes_to_one_tag_across_replicas(cluster):
    """32 clients push different manifests to one tag through the balancer while
    readers poll the tag on every replica: all pushes succeed, the tag ends on
    one of them, every replica names the same one, no other tag is lost."""
    repo = "scale/f38"
    n = 32
    images = [image(config=json.dumps({"pusher": i}).encode()) for i in range(n)]
    digests = [sha256(body) for body, _ in images]
    uploader = Client(cluster.url)
    for _, blobs in images:
        for data in blobs.values():
            uploader.push_blob(repo, data)
    barrier = threading.Barrier(n)
    statuses: list[int | None] = [None] * n
    done = threading.Event()
    seen: set[str] = set()
    failures: list[str] = []

    def push(i: int) -> None:
        c = Client(cluster.url)
        body = images[i][0]
        assert c.put_manifest(repo, f"own-{i}", body).status_code == 201
        barrier.wait(timeout=60)
        statuses[i] = c.put_manifest(repo, "race", body).status_code

    def read(replica_url: str) -> None:
        c = Client(replica_url)
        while not done.is_set():
            r = c.get_manifest(repo, "race")
            if r.status_code == 200:
                seen.add(r.headers["Docker-Content-Digest"])
            elif r.status_code != 404:
                failures.append(f"{replica_url}: {r.status_code}")

    readers = [threading.Thread(target=read, args=(r.url,)) for r in cluster.replicas]
    pushers = [threading.Thread(target=push, args=(i,)) for i in range(n)]
    for t in readers + pushers:
        t.start()
    for t in pushers:
        t.join(timeout=120)
    done.set()
    for t in readers:
        t.join(timeout=60)
    assert statuses == [201] * n
    assert not failures, failures
    assert seen <= set(digests)
    final = {
        replica.name: Client(replica.url)
        .get_manifest(repo, "race")
        .headers.get("Docker-Content-Digest")
        for replica in cluster.replicas
    }
    assert len(set(final.values())) == 1, final
    assert final["r1"] in digests
    for replica in cluster.replicas:
        c = Client(replica.url)
        tags = c.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
        assert sorted(tags) == sorted(["race", *(f"own-{i}" for i in range(n))])
        for i in range(0, n, 7):
            r = c.get_manifest(repo, f"own-{i}")
            assert r.headers["Docker-Content-Digest"] == digests[i]
    rows = cluster.sql(
        "SELECT count(*) FROM registry_tag t JOIN registry_repository r ON r.id = t.repository_id"
        " WHERE r.name = %s AND t.name = 'race'",
        repo,
    )
    assert rows == [(1,)]


def test_f39_parallel_uploads_of_one_digest_across_replicas(cluster):
    """24 parallel uploads of the same bytes (chunked and monolithic, hopping
    replicas) with readers polling the blob: one stored blob, every upload
    succeeds, no reader sees a partial blob."""
    repo = "scale/f39"
    n = 24
    data = os.urandom(2 * 1024 * 1024 + 5)
    digest = sha256(data)
    barrier = threading.Barrier(n)
    results: list[str | None] = [None] * n
    done = threading.Event()
    reads = Counter()
    failures: list[str] = []

    def upload(i: int) -> None:
        c = Client(cluster.url)
        barrier.wait(timeout=60)
        if i % 2:
            results[i] = c.push_blob(repo, data)
        else:
            results[i] = c.push_blob_chunked(repo, data, chunk=256 * 1024)

    def read() -> None:
        c = Client(cluster.url)
        while not done.is_set():
            r = c.get_blob(repo, digest)
            reads[r.status_code] += 1
            if r.status_code == 200 and r.content != data:
                failures.append(f"partial or wrong blob: {len(r.content)} bytes")
            elif r.status_code not in (200, 404):
                failures.append(f"{r.status_code}: {r.text[:200]}")

    readers = [threading.Thread(target=read) for _ in range(4)]
    uploaders = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
    for t in readers + uploaders:
        t.start()
    for t in uploaders:
        t.join(timeout=180)
    # The readers go on a little after the last upload: they must see it.
    time.sleep(0.5)
    done.set()
    for t in readers:
        t.join(timeout=60)
    assert results == [digest] * n
    assert not failures, failures
    assert reads[200] > 0, reads
    assert cluster.sql("SELECT size FROM registry_blob WHERE digest = %s", digest) == [(len(data),)]
    assert cluster.sql("SELECT count(*) FROM registry_upload WHERE repository_name = %s", repo) == [
        (0,)
    ]
    s3 = cluster.minio.client()
    hexdigest = digest.split(":")[1]
    blob_key = f"berth/blobs/sha256/{hexdigest[:2]}/{hexdigest}"
    stored = s3.list_objects_v2(Bucket=cluster.bucket, Prefix=blob_key)["Contents"]
    assert [(o["Key"], o["Size"]) for o in stored] == [(blob_key, len(data))]
    # No upload bytes are left behind by the 24 sessions: every part in the
    # bucket belongs to a session that is still open.
    open_sessions = {str(pk) for (pk,) in cluster.sql("SELECT id FROM registry_upload")}
    listed = s3.list_objects_v2(Bucket=cluster.bucket, Prefix="berth/uploads/").get("Contents", [])
    assert {o["Key"].split("/")[2] for o in listed} <= open_sessions
    for replica in cluster.replicas:
        r = Client(replica.url).get_blob(repo, digest)
        assert r.status_code == 200 and r.content == data


def test_tag_moves_are_seen_by_every_replica_at_once(cluster):
    """Manifest lookups are cached; a tag moved or a manifest deleted through one
    replica is seen by every other at once (the cache is shared, or none)."""
    repo = "scale/moves"
    r1, r2, r3 = (Client(r.url) for r in cluster.replicas)
    body_a, blobs_a = image(config=b'{"image": "A"}')
    body_b, blobs_b = image(config=b'{"image": "B"}')
    for data in {**blobs_a, **blobs_b}.values():
        r1.push_blob(repo, data)
    assert r1.put_manifest(repo, "v1", body_a).status_code == 201
    for c in (r1, r2, r3):  # every replica has looked it up (and may cache it)
        assert c.get_manifest(repo, "v1").content == body_a
    assert r2.put_manifest(repo, "v1", body_b).status_code == 201
    for c in (r3, r1, r2):
        r = c.get_manifest(repo, "v1")
        assert r.headers["Docker-Content-Digest"] == sha256(body_b), c.url
    assert r3.put_manifest(repo, "v1", body_a).status_code == 201
    for c in (r2, r1, r3):
        assert c.get_manifest(repo, "v1").content == body_a, c.url
    # Deleted through one replica: gone on every one, by tag and by digest.
    for c in (r1, r2, r3):
        assert c.get_manifest(repo, sha256(body_b)).status_code == 200
    assert r1.request("DELETE", f"/v2/{repo}/manifests/{sha256(body_a)}").status_code == 202
    for c in (r2, r3, r1):
        assert c.get_manifest(repo, "v1").status_code == 404, c.url
        assert c.get_manifest(repo, sha256(body_a)).status_code == 404, c.url


def test_replica_killed_in_the_middle_of_pushes_and_pulls(cluster):
    """SIGKILL one replica while clients push (chunked) and pull through the
    balancer; they retry and finish. Nothing acknowledged is lost,
    registry_check passes on the shared backends, the replica serves again."""
    repo = "scale/kill"
    pushers, images_each = 6, 5
    stats = Stats()
    acked: dict[str, tuple[str, bytes]] = {}
    failures: list[str] = []
    pulls = Counter()
    stop_pulling = threading.Event()

    def push(i: int) -> None:
        rng = random.Random(i)
        c = Client(cluster.url, stats, retry=True)
        try:
            for k in range(images_each):
                layers = [os.urandom(rng.randint(200_000, 1_500_000)) for _ in range(2)]
                body, blobs = image(config=json.dumps({"p": i, "k": k}).encode(), layers=layers)
                for data in blobs.values():
                    c.push_blob_chunked(repo, data, chunk=256 * 1024)
                tag = f"p{i}-{k}"
                r = c.put_manifest(repo, tag, body)
                assert r.status_code == 201, r.text
                acked[tag] = (r.headers["Docker-Content-Digest"], body)
        except Exception as exc:
            failures.append(f"pusher {i}: {exc!r}")

    def pull(j: int) -> None:
        rng = random.Random(100 + j)
        c = Client(cluster.url, stats, retry=True)
        try:
            while not stop_pulling.is_set():
                if not acked:
                    time.sleep(0.05)
                    continue
                tag = rng.choice(sorted(acked))
                digest, body = acked[tag]
                r = c.get_manifest(repo, tag)
                assert r.status_code == 200 and r.content == body, (tag, r.status_code)
                assert r.headers["Docker-Content-Digest"] == digest
                for layer in json.loads(body)["layers"]:
                    blob = c.get_blob(repo, layer["digest"])
                    assert blob.status_code == 200
                    assert sha256(blob.content) == layer["digest"]
                pulls["images"] += 1
        except Exception as exc:
            failures.append(f"puller {j}: {exc!r}")

    victim = cluster.replica("r2")
    threads = [threading.Thread(target=push, args=(i,)) for i in range(pushers)]
    threads += [threading.Thread(target=pull, args=(j,)) for j in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < pushers and time.monotonic() < deadline:
        time.sleep(0.05)
    served_before = stats.replicas["r2"]
    victim.kill()
    for t in threads[:pushers]:
        t.join(timeout=300)
    stop_pulling.set()
    for t in threads[pushers:]:
        t.join(timeout=60)
    assert not failures, [*failures, cluster.logs()]
    assert len(acked) == pushers * images_each
    assert served_before > 0  # the victim was serving this load when it died
    assert stats.retries > 0, stats  # and clients saw it die
    assert pulls["images"] > 0
    print(f"kill: {len(acked)} pushes, {pulls['images']} pulls, {stats}")
    assert cluster.balancer.server_status()["r2"] == "DOWN"

    check = cluster.replica("r1").manage("registry_check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert " 0 errors" in check.stdout, check.stdout

    victim.start()
    cluster.balancer.wait_status("r2", "UP")
    direct = Client(victim.url)
    through = Client(cluster.url)
    for tag, (digest, body) in sorted(acked.items()):
        for c in (direct, through):
            r = c.get_manifest(repo, tag)
            assert r.status_code == 200 and r.content == body, tag
            assert r.headers["Docker-Content-Digest"] == digest
        for layer in json.loads(body)["layers"]:
            blob = direct.get_blob(repo, layer["digest"])
            assert sha256(blob.content) == layer["digest"]
    assert "r2" in through.served_by
