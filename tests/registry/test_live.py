"""The protocol over a real socket, through the production web server: what the
in-process client cannot show (chunked bodies, lying lengths, timeouts, TLS
probes, concurrency, a full disk)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests

from tests.conftest import ADMIN, BerthServer, basic
from tests.crane import crane_for, one_file_layer

from .helpers import OCI_MANIFEST, Remote, image, sha256

pytestmark = pytest.mark.live  # every test talks to a Berth process

http = requests.Session()
http.auth = ADMIN
AUTH_LINE = f"Authorization: {basic(*ADMIN)}\r\n"


def raw_request(addr: str, head: bytes, body_parts: list[bytes], close_write: bool = False):
    host, port = addr.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head)
        try:
            for part in body_parts:
                s.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading: the answer is below
        if close_write:
            s.shutdown(socket.SHUT_WR)
        data = b""  # every request here says Connection: close: read to EOF
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_head_carries_exact_content_length(berth):
    reg = Remote(berth.url)
    data = os.urandom(12345)
    digest, body = reg.push_image("live/head", "v1", layers=[data])
    r = http.head(f"{berth.url}/v2/live/head/blobs/{digest_of(data)}")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "12345"
    r = http.head(f"{berth.url}/v2/live/head/manifests/v1")
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Docker-Content-Digest"] == digest


def digest_of(data: bytes) -> str:
    return sha256(data)


def test_chunked_transfer_patch_and_monolithic_post(berth):
    parts = [os.urandom(70_000) for _ in range(5)]
    data = b"".join(parts)
    r = http.post(f"{berth.url}/v2/live/chunked/blobs/uploads/")
    loc = berth.url + r.headers["Location"]
    r = http.patch(loc, data=iter(parts))  # generator → Transfer-Encoding: chunked
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == f"0-{len(data) - 1}"
    r = http.put(f"{loc}?digest={sha256(data)}")
    assert r.status_code == 201, r.text
    other = os.urandom(200_000)
    r = http.post(
        f"{berth.url}/v2/live/chunked/blobs/uploads/?digest={sha256(other)}",
        data=iter([other[:100_000], other[100_000:]]),
    )
    assert r.status_code == 201, r.text
    for blob in (data, other):
        got = http.get(f"{berth.url}/v2/live/chunked/blobs/{sha256(blob)}")
        assert got.content == blob


def test_a4_lying_content_length_adds_nothing(berth):
    r = http.post(f"{berth.url}/v2/live/lying/blobs/uploads/")
    path = r.headers["Location"]
    loc = berth.url + path
    http.patch(loc, data=b"x" * 100)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {berth.addr}\r\nContent-Length: 1000\r\n{AUTH_LINE}"
        "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    status, _ = raw_request(berth.addr, head, [b"y" * 300], close_write=True)
    assert status == 400
    r = http.get(loc)
    assert r.status_code == 204
    assert r.headers["Range"] == "0-99"
    r = http.put(f"{loc}?digest={sha256(b'x' * 100)}")
    assert r.status_code == 201, r.text


def test_a8_chunked_manifest_over_limit(berth):
    body = json.dumps({"schemaVersion": 2, "pad": "x" * (5 * 1024 * 1024)}).encode()
    head = (
        f"PUT /v2/live/big/manifests/v1 HTTP/1.1\r\nHost: {berth.addr}\r\n{AUTH_LINE}"
        f"Content-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    parts = [body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)]
    status, data = raw_request(berth.addr, head, [chunked(parts)])
    assert status == 413
    assert b"SIZE_INVALID" in data
    assert http.get(f"{berth.url}/v2/live/big/manifests/v1").status_code == 404


def test_a8_the_413_reaches_a_client_still_sending(berth, tmp_path):
    """The 413 is decided from Content-Length before the body is read. crane
    (Go's HTTP client) writes its whole body before it reads an answer: the
    server reads and drops the rest (up to BERTH_BODY_DRAIN_MAX) before
    answering, so crane reports the OCI error, not a broken pipe."""
    crane = crane_for(berth.addr, ADMIN, tmp_path)
    ref = f"{berth.addr}/live/big413:v1"
    crane("append", "-f", str(one_file_layer(tmp_path / "l.tar", "a", b"a")), "-t", ref)
    manifest = json.loads(crane("manifest", ref))
    manifest["annotations"] = {"pad": "x" * (12 * 1024 * 1024)}
    said = crane("edit", "manifest", ref, stdin=json.dumps(manifest).encode(), ok=False)
    assert b"SIZE_INVALID: manifest larger than 4194304 bytes" in said, said
    assert b"broken pipe" not in said


def test_a13_slow_headers_are_cut_off(tmp_path):
    server = BerthServer(tmp_path / "data", env={"BERTH_HEADER_TIMEOUT": "1"}).start()
    try:
        host, port = server.addr.split(":")
        with socket.create_connection((host, int(port)), timeout=20) as s:
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
            start = time.monotonic()
            while s.recv(1024):
                pass
            assert time.monotonic() - start < 10
    finally:
        server.stop()


def test_tls_client_hello_is_refused_at_once(berth):
    """skopeo/podman probe TLS first on plain-HTTP ports: answer it immediately."""
    host, port = berth.addr.split(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as s, pytest.raises(ssl.SSLError):
        context.wrap_socket(s, server_hostname=host)
    assert time.monotonic() - start < 2


def test_f38_concurrent_pushes_to_one_tag(berth):
    reg = Remote(berth.url)
    keep_digest, _ = reg.push_image("live/race", "keep")
    bodies = []
    for _ in range(32):
        body, blobs = image(layers=[os.urandom(256)])
        for data in blobs.values():
            reg.put_blob("live/race", data)
        bodies.append(body)

    def put(body: bytes) -> int:
        return Remote(berth.url).put_manifest("live/race", "hot", body).status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(put, bodies))
    assert statuses == [201] * 32
    r = http.get(f"{berth.url}/v2/live/race/manifests/hot")
    assert r.content in bodies
    r = http.get(f"{berth.url}/v2/live/race/manifests/keep")
    assert r.headers["Docker-Content-Digest"] == keep_digest
    tags = http.get(f"{berth.url}/v2/live/race/tags/list").json()["tags"]
    assert tags == ["hot", "keep"]


def test_one_manifest_pushed_under_many_tags_at_once(berth):
    """The same manifest PUT under 16 tags at once into a new repository (as
    `docker push --all-tags` or parallel CI jobs do): every PUT is acknowledged,
    one manifest row, every tag names it. On PostgreSQL the inserts really race."""
    reg = Remote(berth.url)
    body, blobs = image(layers=[os.urandom(512)])
    for data in blobs.values():
        reg.put_blob("live/alltags", data)
    tags = [f"t{i:02d}" for i in range(16)]

    def put(tag: str) -> int:
        return Remote(berth.url).put_manifest("live/alltags", tag, body).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(put, tags))
    assert statuses == [201] * 16
    listed = http.get(f"{berth.url}/v2/live/alltags/tags/list").json()["tags"]
    assert listed == tags
    for tag in (tags[0], tags[-1]):
        r = http.get(f"{berth.url}/v2/live/alltags/manifests/{tag}")
        assert r.headers["Docker-Content-Digest"] == sha256(body)


def test_f39_parallel_uploads_of_one_digest(berth):
    data = os.urandom(3 * 1024 * 1024)
    digest = sha256(data)
    seen: list[int] = []

    def upload(i: int) -> int:
        s = requests.Session()
        s.auth = ADMIN
        started = s.post(f"{berth.url}/v2/live/same{i % 4}/blobs/uploads/")
        assert started.status_code == 202, started.text
        loc = berth.url + started.headers["Location"]
        s.patch(loc, data=data[: len(data) // 2])
        return s.put(f"{loc}?digest={digest}", data=data[len(data) // 2 :]).status_code

    def read(i: int) -> None:
        for _ in range(20):
            r = http.get(f"{berth.url}/v2/live/same{i % 4}/blobs/{digest}")
            seen.append(r.status_code)
            if r.status_code == 200:
                assert r.content == data

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        readers = [pool.submit(read, i) for i in range(8)]
        statuses = list(pool.map(upload, range(32)))
        for f in readers:
            f.result()
    assert statuses == [201] * 32
    assert set(seen) <= {200, 404}
    check = berth.manage("registry_check")
    assert "0 errors" in check.stdout
    stored = list((berth.data_dir / "registry" / "blobs" / "sha256").rglob(digest[7:]))
    assert len(stored) == 1


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_f41_disk_full_mid_upload(small_disk):
    server = BerthServer(small_disk / "data").start()
    server.create_projects(["live"])
    try:
        reg = Remote(server.url)
        small = os.urandom(100_000)
        _, body = reg.push_image("live/full", "v1", layers=[small])
        big = os.urandom(20 * 1024 * 1024)
        r = http.post(f"{server.url}/v2/live/full/blobs/uploads/?digest={sha256(big)}", data=big)
        assert r.status_code == 503
        assert r.json()["errors"][0]["message"] == "storage is full"
        assert "Retry-After" in r.headers
        # Nothing half-committed; pulls keep working.
        assert http.head(f"{server.url}/v2/live/full/blobs/{sha256(big)}").status_code == 404
        assert http.get(f"{server.url}/v2/live/full/manifests/v1").content == body
        assert http.get(f"{server.url}/v2/live/full/blobs/{sha256(small)}").content == small
        # Space returns: pushes recover.
        subprocess.run(["mount", "-o", "remount,size=96m", str(small_disk)], check=True)
        r = http.post(f"{server.url}/v2/live/full/blobs/uploads/?digest={sha256(big)}", data=big)
        assert r.status_code == 201, r.text
        assert "0 errors" in server.manage("registry_check").stdout
    finally:
        server.stop()
