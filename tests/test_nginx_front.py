"""Berth behind nginx with deploy/nginx/berth.conf: Berth authorizes every blob
GET and answers with X-Accel-Redirect; nginx sends the file (sendfile, ranges).

Debian's nginx runs as a private instance with the shipped configuration, only
its three marked values replaced (Berth's address, the port, the blobs
directory: bench.peers.nginx.front_config, which the berth-nginx benchmark
peer uses too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
import requests.adapters

from bench.peers.nginx import front_config
from tests.conftest import ADMIN, BerthServer, refused_at_start
from tests.crane import crane_for, file_in_export, one_file_layer
from tests.registry.helpers import sha256
from tests.servers import _stop_group, _wait_port
from tests.support import free_port, slow_senders

pytestmark = pytest.mark.dbindependent

ACCEL = "/_berth_blobs/"


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Iterator[tuple[BerthServer, str]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx missing: run scripts/test-deps.sh"
    tmp = tmp_path_factory.mktemp("nginx-front")
    env = {
        "BERTH_BLOB_X_ACCEL_REDIRECT": ACCEL,
        "BERTH_TRUSTED_PROXIES": "127.0.0.1",  # nginx reaches Berth from there
        "BERTH_LOGIN_FAILURES_ALLOWED": "3",
    }
    server = BerthServer(tmp / "data", env=env).start()
    server.create_projects(["front"])
    port = free_port()
    wd = tmp / "nginx"
    wd.mkdir()
    blobs = server.data_dir / "registry" / "blobs"
    conf = front_config(wd, server.addr, f"127.0.0.1:{port}", blobs)
    (wd / "nginx.conf").write_text(conf)
    log = wd / "stdout.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [nginx, "-p", str(wd), "-c", str(wd / "nginx.conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, log, 20)
        yield server, f"127.0.0.1:{port}"
    finally:
        _stop_group(proc)
        server.stop()


def push_blob(base: str, name: str, data: bytes) -> str:
    digest = sha256(data)
    r = requests.post(
        f"{base}/v2/{name}/blobs/uploads/?digest={digest}", data=data, auth=ADMIN, timeout=60
    )
    assert r.status_code == 201, r.text
    return digest


def test_blob_bytes_come_from_nginx_after_berth_authorized_them(front):
    server, addr = front
    base = f"http://{addr}"
    data = os.urandom(5 * 1024 * 1024 + 11)
    digest = push_blob(base, "front/app", data)  # the upload goes through nginx too
    r = requests.get(f"{base}/v2/front/app/blobs/{digest}", auth=ADMIN, timeout=60)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["ETag"] == f'"{digest}"'
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "X-Accel-Redirect" not in r.headers
    r = requests.get(
        f"{base}/v2/front/app/blobs/{digest}", auth=ADMIN, headers={"Range": "bytes=10-99"}
    )
    assert r.status_code == 206
    assert r.content == data[10:100]
    assert r.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
    # Berth itself only names the file: the bytes never pass through it.
    direct = requests.get(f"{server.url}/v2/front/app/blobs/{digest}", auth=ADMIN)
    assert direct.status_code == 200 and direct.content == b""
    hexpart = digest.split(":", 1)[1]
    assert direct.headers["X-Accel-Redirect"] == f"{ACCEL}sha256/{hexpart[:2]}/{hexpart}"


def test_nginx_serves_nothing_berth_did_not_authorize(front):
    _, addr = front
    base = f"http://{addr}"
    data = os.urandom(4096)
    digest = push_blob(base, "front/secret", data)
    hexpart = digest.split(":", 1)[1]
    r = requests.get(f"{base}/v2/front/secret/blobs/{digest}", timeout=30)  # no credentials
    assert r.status_code == 401
    assert data not in r.content
    # The internal location is not reachable by URL.
    r = requests.get(f"{base}{ACCEL}sha256/{hexpart[:2]}/{hexpart}", auth=ADMIN, timeout=30)
    assert r.status_code == 404
    assert data not in r.content
    # Linked in another repository only: not readable here.
    r = requests.get(f"{base}/v2/front/other/blobs/{digest}", auth=ADMIN, timeout=30)
    assert r.status_code == 404
    assert data not in r.content


def test_crane_pushes_and_pulls_through_nginx(front, tmp_path):
    _, addr = front
    crane = crane_for(addr, ADMIN, tmp_path)
    payload = os.urandom(3 * 1024 * 1024)
    layer = one_file_layer(tmp_path / "layer.tar", "data/payload.bin", payload)
    ref = f"{addr}/front/crane:v1"
    crane("append", "-f", str(layer), "-t", ref)
    crane("export", ref, str(tmp_path / "export.tar"))  # crane checks every digest
    assert file_in_export(tmp_path / "export.tar", "data/payload.bin") == payload


class _From(requests.adapters.HTTPAdapter):
    """Connections from a chosen loopback address (127.0.0.0/8 is all local)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(address: str, auth: tuple[str, str]) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _From(address))
    session.auth = auth
    return session


def test_berth_sees_each_client_behind_nginx(front):
    """nginx appends the client's address to X-Forwarded-For and Berth trusts
    only that hop: the throttle counts per client, not per nginx, and the audit
    log names the client — whatever address the client claims itself."""
    server, addr = front
    token = f"http://{addr}/service/token?service=harbor-registry"
    attacker = client_from("127.0.0.3", ("admin", "Guess1234"))
    statuses = [
        attacker.get(token, headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=30).status_code
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    # The owner, through the same nginx from another address, is not throttled.
    assert client_from("127.0.0.4", ADMIN).get(token, timeout=30).status_code == 200
    query = (
        "from audit.models import AuditEvent; "
        "print(sorted(set(AuditEvent.objects.filter(operation='login')"
        ".values_list('client_ip', 'result'))))"
    )
    wanted = "[('127.0.0.3', 'failure'), ('127.0.0.4', 'success')]"
    deadline = time.monotonic() + 30  # the server writes its audit buffer every second
    while (seen := server.manage("shell", "-v", "0", "-c", query).stdout.strip()) != wanted:
        assert time.monotonic() < deadline, seen
        time.sleep(0.5)


def test_stalled_bodies_wait_in_nginx_not_in_berth(front):
    """nginx reads every body but a layer's before passing the request on:
    more stalled senders than Berth has threads (16) hold nothing of Berth's,
    so a login with its whole body still gets one of Berth's body threads
    (behind a streaming proxy it got 503: all were waiting). nginx itself
    answers them 408 after client_body_timeout."""
    _, addr = front
    base = f"http://{addr}"
    with slow_senders(addr, 24):
        r = requests.post(
            f"{base}/c/login", data={"principal": ADMIN[0], "password": ADMIN[1]}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert requests.get(f"{base}/v2/", auth=ADMIN, timeout=60).status_code == 200


def test_a_malformed_internal_location_is_refused_at_start(tmp_path):
    stderr = refused_at_start(tmp_path, BERTH_BLOB_X_ACCEL_REDIRECT="_berth_blobs")
    assert "BERTH_BLOB_X_ACCEL_REDIRECT must be a path like /_berth_blobs/" in stderr
