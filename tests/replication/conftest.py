"""Registries for replication's tests: CNCF Distribution with htpasswd, and
the helpers that fill them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.clients.distribution import DistributionRegistry
from tests.registry.helpers import Remote, artifact, image, sha256

DIST_USER = ("repl", "repl-secret-1")


def htpasswd(path: Path, user: str, password: str) -> Path:
    line = subprocess.run(
        ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
    ).stdout.strip()
    path.write_text(line + "\n")
    return path


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributionRegistry]:
    """Distribution 2.8 (Debian's docker-registry) with htpasswd Basic auth."""
    base = tmp_path_factory.mktemp("distribution")
    registry = DistributionRegistry(htpasswd=htpasswd(base / "htpasswd", *DIST_USER))
    registry.start(base / "run")
    yield registry
    registry.stop()


class TwoStepRemote(Remote):
    """Pushes blobs as POST then PUT (Distribution 2.8 answers a monolithic
    POST with an upload session)."""

    def put_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.http.post(f"{self.url}/v2/{name}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        location = self.url + location if location.startswith("/") else location
        sep = "&" if "?" in location else "?"
        r = self.http.put(f"{location}{sep}digest={digest}", data=data)
        assert r.status_code == 201, r.text
        return digest


def remote(url: str, auth: tuple[str, str]) -> Remote:
    pusher = TwoStepRemote(url)
    pusher.http.auth = auth
    return pusher


def push_referrer(pusher: Any, repo: str, subject: bytes, *, tag_schema: bool) -> str:
    """An OCI 1.1 artifact referring to ``subject``; with ``tag_schema`` also
    the referrers index under ``sha256-<hex>`` (what oras and cosign write to a
    registry without the referrers API)."""
    body, blobs = artifact(subject, "application/vnd.example.sbom", os.urandom(64))
    digest, _ = pusher.push(repo, sha256(body), body, blobs)
    if tag_schema:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "size": len(body),
                    "artifactType": "application/vnd.example.sbom",
                }
            ],
        }
        import json

        raw = json.dumps(index).encode()
        r = pusher.put_manifest(
            repo, sha256(subject).replace(":", "-"), raw, "application/vnd.oci.image.index.v1+json"
        )
        assert r.status_code == 201, r.text
    return digest


def push_big_blob(url: str, auth: tuple[str, str], repo: str, size: int) -> str:
    """A blob of ``size`` pseudo-random bytes streamed in chunked PATCHes (the
    test process never holds it); its digest."""
    http = requests.Session()
    http.auth = auth
    r = http.post(f"{url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    if location.startswith("/"):
        location = url + location
    hasher = hashlib.sha256()
    seed = os.urandom(16)

    def body() -> Iterator[bytes]:
        block = 1 << 20
        for i in range(0, size, block):
            piece = hashlib.shake_256(seed + i.to_bytes(8, "big")).digest(min(block, size - i))
            hasher.update(piece)
            yield piece

    r = http.patch(location, data=body(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    if location.startswith("/"):
        location = url + location
    digest = "sha256:" + hasher.hexdigest()
    sep = "&" if "?" in location else "?"
    r = http.put(f"{location}{sep}digest={digest}")
    assert r.status_code == 201, r.text
    return digest


__all__ = ["DIST_USER", "image", "push_big_blob", "push_referrer", "remote"]
