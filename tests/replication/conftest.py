"""Registries for replication's tests: CNCF Distribution with htpasswd, and
the helpers that fill them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
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


class TokenRealm:
    """A small token service for Distribution's token auth: checks Basic
    credentials and signs an RS256 JWT (the certificate in ``x5c``) granting
    whatever scopes were asked."""

    def __init__(self, directory: Path, user: tuple[str, str]) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.user = user
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test-token")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.der = self.cert.public_bytes(serialization.Encoding.DER)
        self.server: Any = None
        self.issued = 0

    def start(self) -> TokenRealm:
        import base64
        import http.server
        import threading
        import urllib.parse

        import jwt

        realm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                header = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(":".join(realm.user).encode()).decode()
                if header != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                access = []
                for value in query.get("scope", []):
                    for scope in value.split():
                        kind, _, rest = scope.partition(":")
                        name, _, actions = rest.rpartition(":")
                        access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                claims = {
                    "iss": "berth-test-issuer",
                    "sub": realm.user[0],
                    "aud": query.get("service", [""])[0],
                    "exp": now + 300,
                    "nbf": now - 10,
                    "iat": now,
                    "jti": os.urandom(8).hex(),
                    "access": access,
                }
                token = jwt.encode(
                    claims,
                    realm.key,
                    algorithm="RS256",
                    headers={"x5c": [base64.b64encode(realm.der).decode()]},
                )
                realm.issued += 1
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def token_distribution(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DistributionRegistry, TokenRealm]]:
    """Distribution 2.8 behind a token realm (Bearer tokens per scope)."""
    base = tmp_path_factory.mktemp("token-distribution")
    realm = TokenRealm(base, DIST_USER).start()
    registry = DistributionRegistry(
        token={
            "realm": realm.url,
            "service": "berth-test-registry",
            "issuer": "berth-test-issuer",
            "rootcertbundle": str(realm.bundle),
        }
    )
    try:
        registry.start(base / "run")
        yield registry, realm
    finally:
        registry.stop()
        realm.stop()
