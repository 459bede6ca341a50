"""Quotas against a live Berth and real clients: crane's push over the limit is
refused with Harbor's message, under it passes; concurrent pushes near the
limit never take usage past it by more than docs/quotas.md allows, and usage
stays what the project holds (registry_check)."""

from __future__ import annotations

import concurrent.futures
import os
import re

import pytest
import requests

from tests.conftest import ADMIN
from tests.crane import crane_for, one_file_layer

from .helpers import Remote, image, sha256

pytestmark = pytest.mark.live

http = requests.Session()
http.auth = ADMIN


def _project(berth, name: str, limit: int) -> int:
    r = http.post(
        f"{berth.url}/api/v2.0/projects", json={"project_name": name, "storage_limit": limit}
    )
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


def _quota(berth, pid: int) -> dict:
    r = http.get(f"{berth.url}/api/v2.0/quotas/{pid}")
    assert r.status_code == 200, r.text
    return r.json()


def test_crane_is_refused_over_the_limit_with_harbors_message_and_passes_under_it(berth, tmp_path):
    pid = _project(berth, "quota-crane", 200 * 1024)
    crane = crane_for(berth.addr, ADMIN, tmp_path)
    layer = one_file_layer(tmp_path / "big.tar", "big", os.urandom(300 * 1024))
    ref = f"{berth.addr}/quota-crane/app:v1"
    said = crane("append", "-f", str(layer), "-t", ref, ok=False)
    assert re.search(rb"DENIED: adding 30\d\.\d KiB of storage resource, which when", said), said
    assert b"will exceed the configured upper limit of 200.0 KiB." in said, said
    # Only the config blob crane pushed before the layer went in (an orphan
    # until garbage collection, charged as Harbor charges it).
    assert _quota(berth, pid)["used"]["storage"] < 1024
    assert http.get(f"{berth.url}/v2/quota-crane/app/manifests/v1").status_code == 404
    r = http.put(f"{berth.url}/api/v2.0/quotas/{pid}", json={"hard": {"storage": 2 * 2**20}})
    assert r.status_code == 200, r.text
    crane("append", "-f", str(layer), "-t", ref)
    used = _quota(berth, pid)["used"]["storage"]
    assert 300 * 1024 < used < 2 * 2**20
    assert crane("digest", ref).strip().startswith(b"sha256:")


def test_concurrent_pushes_near_the_limit_stay_within_the_documented_bound(berth):
    workers, size = 12, 64 * 1024
    limit = 6 * size  # room for about half of them
    pid = _project(berth, "quota-race", limit)
    reg = Remote(berth.url)

    def push(n: int) -> int:
        body, blobs = image(config=b'{"n":%d}' % n, layers=[os.urandom(size)])
        for data in blobs.values():
            r = reg.http.post(
                f"{berth.url}/v2/quota-race/app/blobs/uploads/?digest={sha256(data)}", data=data
            )
            if r.status_code != 201:
                assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text
                return r.status_code
        return reg.put_manifest("quota-race/app", f"v{n}", body).status_code

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        statuses = list(pool.map(push, range(workers)))
    assert set(statuses) <= {201, 403}
    assert 201 in statuses and 403 in statuses, statuses
    used = _quota(berth, pid)["used"]["storage"]
    # docs/quotas.md: concurrent checks may each pass against the same usage,
    # so a project ends at most one item per other concurrent push over.
    assert used <= limit + (workers - 1) * (size + 1024), used
    check = berth.manage("registry_check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_skopeo_copying_into_a_full_project_shows_harbors_message(berth, tmp_path):
    from tests.clients.skopeo import Skopeo
    from tests.conftest import ADMIN_PASSWORD

    _project(berth, "quota-src", -1)
    pid = _project(berth, "quota-skopeo", 100 * 1024)
    crane = crane_for(berth.addr, ADMIN, tmp_path)
    layer = one_file_layer(tmp_path / "l.tar", "f", os.urandom(200 * 1024))
    crane("append", "-f", str(layer), "-t", f"{berth.addr}/quota-src/app:v1")
    skopeo = Skopeo(tmp_path / "skopeo")
    try:
        creds = f"admin:{ADMIN_PASSWORD}"
        said = skopeo.run(
            "copy",
            "--retry-times",
            "0",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            creds,
            "--dest-creds",
            creds,
            f"docker://{berth.addr}/quota-src/app:v1",
            f"docker://{berth.addr}/quota-skopeo/app:v1",
            check=False,
        )
    finally:
        skopeo.stop()
    assert said.returncode != 0
    assert "denied: adding 20" in said.stderr, said.stderr
    assert "will exceed the configured upper limit of 100.0 KiB." in said.stderr, said.stderr
    assert http.get(f"{berth.url}/v2/quota-skopeo/app/manifests/v1").status_code == 404
    assert _quota(berth, pid)["used"]["storage"] < 1024  # the config at most
