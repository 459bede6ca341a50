"""Building OCI content in tests: blobs, image manifests, indexes, referrers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_JSON = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar.gz"
NOTATION = "application/vnd.cncf.notary.signature"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image(
    config: bytes | None = None, layers: list[bytes] | None = None, **extra: Any
) -> tuple[bytes, dict[str, bytes]]:
    """An OCI image manifest and the blobs it needs (digest → bytes)."""
    config = config if config is not None else json.dumps({"architecture": "amd64"}).encode()
    layers = layers if layers is not None else [os.urandom(1024)]
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        **extra,
    }
    blobs = {sha256(b): b for b in [config, *layers]}
    return json.dumps(doc).encode(), blobs


def index(manifests: list[bytes], **extra: Any) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, m) for m in manifests],
        **extra,
    }
    return json.dumps(doc).encode()


def artifact(subject: bytes, artifact_type: str, payload: bytes) -> tuple[bytes, dict[str, bytes]]:
    """An OCI 1.1 artifact (empty config) that refers to ``subject``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(EMPTY_TYPE, EMPTY_JSON),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"org.example.note": "hello"},
    }
    return json.dumps(doc).encode(), {sha256(EMPTY_JSON): EMPTY_JSON, sha256(payload): payload}


def chart(files: dict[str, bytes]) -> tuple[bytes, dict[str, bytes]]:
    """A Helm chart as `helm push` stores it: the archive of ``files``
    (``<chart>/Chart.yaml``…) and its config."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return chart_of(archive.getvalue())


def chart_of(archive: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The manifest and blobs of a chart whose archive is ``archive``."""
    config = json.dumps({"name": "demo", "version": "1.0.0", "apiVersion": "v2"}).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(HELM_CONFIG, config),
        "layers": [descriptor(HELM_CHART, archive)],
    }
    return json.dumps(doc).encode(), {sha256(config): config, sha256(archive): archive}


class InProcess:
    """Pushes through the in-process /v2 client (tests/conftest.py: v2)."""

    def __init__(self, client: Any) -> None:
        self.c = client

    def put_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.c.post(
            f"/v2/{name}/blobs/uploads/?digest={digest}",
            data=data,
            content_type="application/octet-stream",
        )
        assert r.status_code == 201, r.content
        return digest

    def put_manifest(self, name: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST):
        return self.c.put(f"/v2/{name}/manifests/{ref}", data=body, content_type=media_type)

    def push_image(self, name: str, tag: str, **kw: Any) -> tuple[str, bytes]:
        return self.push(name, tag, *image(**kw))

    def push(self, name: str, ref: str, body: bytes, blobs: dict[str, bytes]) -> tuple[str, bytes]:
        """Blobs, then the manifest; (its digest, its bytes)."""
        for data in blobs.values():
            self.put_blob(name, data)
        r = self.put_manifest(name, ref, body)
        assert r.status_code == 201, r.content
        return sha256(body), body


class Remote:
    """Pushes to a live registry over HTTP with requests."""

    def __init__(self, url: str) -> None:
        import requests

        from tests.conftest import ADMIN

        self.url = url
        self.http = requests.Session()
        self.http.auth = ADMIN

    def put_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.http.post(f"{self.url}/v2/{name}/blobs/uploads/?digest={digest}", data=data)
        assert r.status_code == 201, r.text
        return digest

    def put_manifest(self, name: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST):
        return self.http.put(
            f"{self.url}/v2/{name}/manifests/{ref}",
            data=body,
            headers={"Content-Type": media_type},
        )

    def push_image(self, name: str, tag: str, **kw: Any) -> tuple[str, bytes]:
        return self.push(name, tag, *image(**kw))

    def push(self, name: str, ref: str, body: bytes, blobs: dict[str, bytes]) -> tuple[str, bytes]:
        """Blobs, then the manifest; (its digest, its bytes)."""
        for data in blobs.values():
            self.put_blob(name, data)
        r = self.put_manifest(name, ref, body)
        assert r.status_code == 201, r.text
        return sha256(body), body
