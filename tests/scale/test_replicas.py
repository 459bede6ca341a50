"""Three Berth replicas behind haproxy (round robin per request) on one
PostgreSQL, one S3 server (MinIO) and one Redis: pushes and pulls hopping
replicas, F38 and F39 across replicas, a replica killed under load, tag moves
seen by every replica at once (docs/scale-out.md, "Replicas")."""

from __future__ import annotations

import os

import pytest

from tests.registry.helpers import image, sha256

from .client import Client

pytestmark = pytest.mark.slow


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
