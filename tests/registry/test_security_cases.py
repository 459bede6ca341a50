"""Cases A1-A13 of shared/reference/security-cases.md through the in-process
client (the live-server parts are in test_live.py). After each, the registry
must still be consistent (registry_check)."""

from __future__ import annotations

import datetime
import gzip
import http.server
import json
import os
import threading

import pytest

from accounts.models import Member, Project, Role, User
from registry.models import Blob, Manifest, Repository, Upload
from registry.services.check import registry_check
from registry.tasks import purge_stale_uploads
from tests.conftest import basic

from .helpers import OCI_INDEX, OCI_MANIFEST, InProcess, descriptor, image, sha256


@pytest.fixture
def reg(v2) -> InProcess:
    return InProcess(v2)


@pytest.fixture(autouse=True)
def consistent_afterwards(v2):
    yield
    report = registry_check()
    assert report.errors == []


def code(response) -> str:
    return json.loads(response.content)["errors"][0]["code"]


# A1 ---------------------------------------------------------------------------

BAD_NAMES = [
    "a/../b",
    "..",
    "a/./b",
    "a\\b",
    "a\x00b",
    "Upper/case",
    "a//b",
    "a/",
    "-a",
    "a" * 256,
    "a/" * 127 + "b" * 10,
]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "suffix", ["tags/list", "manifests/latest", "blobs/uploads/", f"blobs/{sha256(b'x')}"]
)
def test_a1_bad_names_rejected_before_storage(v2, tmp_path, name, suffix):
    method = v2.post if suffix == "blobs/uploads/" else v2.get
    r = method(f"/v2/{name}/{suffix}")
    assert r.status_code in (400, 404)
    if r.status_code == 400:
        assert code(r) == "NAME_INVALID"
    assert not Repository.objects.exists()
    assert not Upload.objects.exists()
    assert not (tmp_path / "registry" / "uploads").exists() or not any(
        (tmp_path / "registry" / "uploads").iterdir()
    )


def test_a1_encoded_dots_are_invalid(v2):
    # The server decodes %2e%2e into '..' before routing; the grammar refuses it.
    r = v2.get("/v2/a/%2e%2e/b/tags/list")
    assert r.status_code == 400
    assert code(r) == "NAME_INVALID"


def test_a1_raw_encoded_separator_refused_when_server_reports_raw_uri(v2):
    r = v2.get("/v2/a/b/tags/list", RAW_URI="/v2/a%2Fb/tags/list")
    assert r.status_code == 400
    assert code(r) == "NAME_INVALID"


# A2 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("t" * 129, "TAG_INVALID"),
        (".hidden", "TAG_INVALID"),
        ("sha256:abc", "DIGEST_INVALID"),
        ("sha256:" + "A" * 64, "DIGEST_INVALID"),
        ("sha256:" + "g" * 64, "DIGEST_INVALID"),
        ("md5:" + "a" * 32, "UNSUPPORTED"),
    ],
)
def test_a2_bad_references(v2, reg, ref, expected):
    body, blobs = image()
    for data in blobs.values():
        reg.put_blob("a2/repo", data)
    r = reg.put_manifest("a2/repo", ref, body)
    assert r.status_code in (400, 405)
    assert code(r) == expected
    # On reads a reference that cannot name anything is unknown (OCI conformance).
    r = v2.get(f"/v2/a2/repo/manifests/{ref}")
    assert r.status_code == 404
    assert code(r) == "MANIFEST_UNKNOWN"
    assert not Manifest.objects.exists()


def test_a2_tag_with_traversal_never_routes_to_a_manifest(v2, reg):
    body, blobs = image()
    for data in blobs.values():
        reg.put_blob("a2/repo", data)
    r = reg.put_manifest("a2/repo", "..%2Ft", body)
    assert r.status_code in (400, 404)
    assert "errors" in json.loads(r.content)
    assert not Manifest.objects.exists()


@pytest.mark.parametrize("digest", ["sha256:abc", "sha256:" + "A" * 64, "nope"])
def test_a2_bad_blob_digests(v2, digest):
    assert code(v2.get(f"/v2/a2/b/blobs/{digest}")) == "DIGEST_INVALID"
    assert (
        code(
            v2.post(
                f"/v2/a2/b/blobs/uploads/?digest={digest}",
                data=b"x",
                content_type="application/octet-stream",
            )
        )
        == "DIGEST_INVALID"
    )


# A3 ---------------------------------------------------------------------------


def test_a3_blob_with_wrong_digest_is_refused_and_unreadable(v2):
    data, claimed = b"real bytes", sha256(b"claimed bytes")
    r = v2.post(
        f"/v2/a3/r/blobs/uploads/?digest={claimed}",
        data=data,
        content_type="application/octet-stream",
    )
    assert r.status_code == 400
    assert code(r) == "DIGEST_INVALID"
    loc = v2.post("/v2/a3/r/blobs/uploads/")["Location"]
    v2.patch(loc, data=data, content_type="application/octet-stream")
    r = v2.put(f"{loc}?digest={claimed}")
    assert r.status_code == 400
    assert code(r) == "DIGEST_INVALID"
    for d in (claimed, sha256(data)):
        assert v2.head(f"/v2/a3/r/blobs/{d}").status_code == 404
    assert not Blob.objects.exists()
    assert not Upload.objects.exists()


# A4 (lying Content-Length needs a real socket: test_live.py) -------------------


def test_a4_content_range_mismatch_and_true_range(v2):
    loc = v2.post("/v2/a4/r/blobs/uploads/")["Location"]
    v2.patch(loc, data=b"0123456789", content_type="application/octet-stream")
    # Content-Range length disagrees with the body's Content-Length.
    r = v2.patch(
        loc, data=b"abc", content_type="application/octet-stream", HTTP_CONTENT_RANGE="10-19"
    )
    assert r.status_code == 416
    r = v2.patch(
        loc, data=b"abc", content_type="application/octet-stream", HTTP_CONTENT_RANGE="garbage"
    )
    assert r.status_code == 416
    r = v2.patch(
        loc, data=b"abc", content_type="application/octet-stream", HTTP_CONTENT_RANGE="5-7"
    )
    assert r.status_code == 416
    assert r["Range"] == "0-9"
    assert v2.get(loc)["Range"] == "0-9"


# A5 ---------------------------------------------------------------------------


def test_a5_manifest_put_by_other_digest(v2, reg):
    body, blobs = image()
    for data in blobs.values():
        reg.put_blob("a5/r", data)
    r = reg.put_manifest("a5/r", sha256(b"something else"), body)
    assert r.status_code == 400
    assert code(r) == "DIGEST_INVALID"
    assert not Manifest.objects.exists()


# A6 ---------------------------------------------------------------------------


def test_a6_missing_layer_or_config(v2, reg):
    config, layer = b'{"a":1}', os.urandom(50)
    body, _ = image(config=config, layers=[layer])
    reg.put_blob("a6/r", config)
    r = reg.put_manifest("a6/r", "v1", body)
    assert r.status_code == 400
    assert code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert json.loads(r.content)["errors"][0]["detail"] == {"digest": sha256(layer)}
    # A blob present in another repository does not count.
    reg.put_blob("a6/other", layer)
    assert code(reg.put_manifest("a6/r", "v1", body)) == "MANIFEST_BLOB_UNKNOWN"
    assert not Manifest.objects.exists()


def test_a6_missing_child_manifest(v2, reg):
    child, _ = image()
    idx = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child)]}
    ).encode()
    r = reg.put_manifest("a6/idx", "v1", idx, OCI_INDEX)
    assert code(r) == "MANIFEST_BLOB_UNKNOWN"


# A7 ---------------------------------------------------------------------------


def test_a7_type_confusion(v2, reg):
    child_digest, child = reg.push_image("a7/r", "base")
    body, _ = image()
    doc = json.loads(body)
    for data in image()[1].values():
        reg.put_blob("a7/r", data)
    confused = dict(doc, manifests=[descriptor(OCI_MANIFEST, child)])
    r = reg.put_manifest("a7/r", "x", json.dumps(confused).encode())
    assert code(r) == "MANIFEST_INVALID"
    idx = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, child)],
        "layers": [],
    }
    r = reg.put_manifest("a7/r", "y", json.dumps(idx).encode(), OCI_INDEX)
    assert code(r) == "MANIFEST_INVALID"
    # Content-Type says index, body says image manifest.
    r = reg.put_manifest("a7/r", "z", child, OCI_INDEX)
    assert code(r) == "MANIFEST_INVALID"
    assert list(Manifest.objects.values_list("digest", flat=True)) == [child_digest]


def test_a7_schema1_refused_clearly(v2):
    body = json.dumps({"schemaVersion": 1, "name": "a7/s1", "tag": "v1", "fsLayers": []})
    r = v2.put(
        "/v2/a7/s1/manifests/v1",
        data=body,
        content_type="application/vnd.docker.distribution.manifest.v1+prettyjws",
    )
    assert r.status_code == 400
    assert code(r) == "MANIFEST_INVALID"
    assert "schema 1" in json.loads(r.content)["errors"][0]["message"]


# A8 ---------------------------------------------------------------------------


def test_a8_manifest_over_limit(v2, settings):
    settings.BERTH_MANIFEST_MAX_BYTES = 1024
    body = json.dumps({"schemaVersion": 2, "pad": "x" * 2000}).encode()
    r = v2.put("/v2/a8/r/manifests/v1", data=body, content_type=OCI_MANIFEST)
    assert r.status_code == 413
    assert code(r) == "SIZE_INVALID"
    assert not Manifest.objects.exists()


# A9 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"schemaVersion": 2, "schemaVersion": 2, "config": {}}',
        b'{"schemaVersion": 2, "x": "\xff\xfe"}',
        b"not json",
        b'"a string"',
        b'{"schemaVersion": 2, "mediaType": "' + b"x" * 3_000_000 + b'"}',
    ],
    ids=[
        "deep-arrays",
        "deep-objects",
        "duplicate-keys",
        "invalid-utf8",
        "garbage",
        "string",
        "huge-string",
    ],
)
def test_a9_hostile_json(v2, body):
    r = v2.put("/v2/a9/r/manifests/v1", data=body, content_type=OCI_MANIFEST)
    assert r.status_code == 400
    assert code(r) == "MANIFEST_INVALID"


# A10 --------------------------------------------------------------------------


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e12", "99999999999999999999"])
def test_a10_bad_page_sizes(v2, reg, n):
    reg.push_image("a10/r", "v1")
    for url in (f"/v2/_catalog?n={n}", f"/v2/a10/r/tags/list?n={n}"):
        r = v2.get(url)
        assert r.status_code == 400
        assert code(r) == "PAGINATION_NUMBER_INVALID"


def test_a10_huge_n_is_clamped(v2, reg, settings, django_assert_max_num_queries):
    settings.BERTH_PAGE_MAX = 2
    for tag in ["a", "b", "c"]:
        reg.push_image("a10/clamp", tag)
    r = v2.get("/v2/a10/clamp/tags/list?n=999999999999")
    assert json.loads(r.content)["tags"] == ["a", "b"]
    assert 'rel="next"' in r["Link"]
    r = v2.get("/v2/_catalog?n=0")
    assert json.loads(r.content)["repositories"] == []


def test_a10_garbage_last(v2, reg):
    reg.push_image("a10/last", "v1")
    r = v2.get("/v2/a10/last/tags/list?last=%ff%00zzz")
    assert r.status_code == 200
    assert json.loads(r.content)["tags"] == []
    assert v2.get("/v2/_catalog?last=" + "x" * 1000).status_code == 400


# A11 --------------------------------------------------------------------------


def test_a11_foreign_layer_urls_never_fetched(v2, reg):
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = b'{"os":"windows"}'
        reg.put_blob("a11/r", config)
        foreign = os.urandom(10)
        doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": descriptor("application/vnd.docker.container.image.v1+json", config),
            "layers": [
                descriptor(
                    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                    foreign,
                    urls=[f"http://127.0.0.1:{server.server_port}/l"],
                )
            ],
        }
        body = json.dumps(doc).encode()
        r = reg.put_manifest(
            "a11/r", "v1", body, "application/vnd.docker.distribution.manifest.v2+json"
        )
        assert r.status_code == 201, r.content
        assert v2.get("/v2/a11/r/manifests/v1").content == body
        assert v2.head(f"/v2/a11/r/blobs/{sha256(foreign)}").status_code == 404
    finally:
        server.shutdown()
    assert hits == []


# A12 --------------------------------------------------------------------------


def test_a12_gzip_bomb_is_stored_opaque(v2, reg):
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    reg.push_image("a12/r", "bomb", layers=[bomb])
    r = v2.get(f"/v2/a12/r/blobs/{sha256(bomb)}")
    assert b"".join(r.streaming_content) == bomb
    assert Blob.objects.get(digest=sha256(bomb)).size == len(bomb)


# A13 (header timeouts: test_live.py) ------------------------------------------


def test_a13_open_upload_cap_per_client(v2, settings):
    settings.BERTH_UPLOADS_PER_CLIENT = 3
    for _ in range(3):
        assert v2.post("/v2/a13/r/blobs/uploads/").status_code == 202
    r = v2.post("/v2/a13/r/blobs/uploads/")
    assert r.status_code == 429
    assert code(r) == "TOOMANYREQUESTS"
    assert r["Retry-After"] == "60"
    # Another principal has a cap of its own.
    dev = User.objects.create_user("dev13", password="Dev13pass")
    Member.objects.create(project=Project.objects.get(name="a13"), user=dev, role=Role.DEVELOPER)
    other = v2.post("/v2/a13/r/blobs/uploads/", HTTP_AUTHORIZATION=basic("dev13", "Dev13pass"))
    assert other.status_code == 202


def test_a13_stale_uploads_purged(v2, settings, tmp_path):
    loc = v2.post("/v2/a13/p/blobs/uploads/")["Location"]
    v2.patch(loc, data=b"abandoned", content_type="application/octet-stream")
    fresh = v2.post("/v2/a13/p/blobs/uploads/")["Location"]
    Upload.objects.filter(pk=loc.rsplit("/", 1)[1]).update(
        updated_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    )
    uploads_dir = tmp_path / "registry" / "uploads"
    (uploads_dir / "stray-without-row").write_bytes(b"x")
    assert purge_stale_uploads() == 1
    assert v2.get(loc).status_code == 404
    assert v2.get(fresh).status_code == 204
    assert sorted(p.name for p in uploads_dir.iterdir()) == [fresh.rsplit("/", 1)[1]]


# C26, C29 -------------------------------------------------------------------------


def test_c26_moving_a_tag_needs_update(v2, reg):
    """A robot that may push but not update adds new tags but cannot move one."""
    from accounts.services.auth import actor_for_user
    from accounts.services.robots import robot_create

    reg.push_image("app/moved", "stable")
    other_body, blobs = image()
    for data in blobs.values():
        reg.put_blob("app/moved", data)
    robot, secret = robot_create(
        actor=actor_for_user(User.objects.get(pk=1)),
        name="pusher",
        level="project",
        permissions=[
            {
                "kind": "project",
                "namespace": "app",
                "access": [
                    {"resource": "repository", "action": "pull"},
                    {"resource": "repository", "action": "push"},
                ],
            }
        ],
    )
    from tests.conftest import RegistryClient

    pusher = RegistryClient(HTTP_AUTHORIZATION=basic(robot.name, secret))
    r = pusher.put("/v2/app/moved/manifests/fresh", data=other_body, content_type=OCI_MANIFEST)
    assert r.status_code == 201
    before = v2.get("/v2/app/moved/manifests/stable")["Docker-Content-Digest"]
    r = pusher.put("/v2/app/moved/manifests/stable", data=other_body, content_type=OCI_MANIFEST)
    assert r.status_code == 403
    assert code(r) == "DENIED"
    r = pusher.put(
        f"/v2/app/moved/manifests/{sha256(other_body)}?tag=stable",
        data=other_body,
        content_type=OCI_MANIFEST,
    )
    assert r.status_code == 403
    assert v2.get("/v2/app/moved/manifests/stable")["Docker-Content-Digest"] == before
    # A developer (who holds repository:update) may move it.
    assert reg.put_manifest("app/moved", "stable", other_body).status_code == 201


def test_c29_deletes_disabled_means_tags_too(v2, reg, settings):
    from django.test import Client

    from tests.conftest import ADMIN

    digest, body = reg.push_image("del/off", "v1")
    layer = json.loads(body)["layers"][0]["digest"]
    settings.BERTH_DELETES_ENABLED = False
    for path in (
        f"/v2/del/off/manifests/{digest}",
        "/v2/del/off/manifests/v1",
        f"/v2/del/off/blobs/{layer}",
    ):
        r = v2.delete(path)
        assert r.status_code == 405
        assert code(r) == "UNSUPPORTED"
    api = Client(HTTP_AUTHORIZATION=basic(*ADMIN))
    base = "/api/v2.0/projects/del/repositories/off"
    assert api.delete(f"{base}/artifacts/v1/tags/v1").status_code == 403
    assert api.delete(f"{base}/artifacts/v1").status_code == 403
    assert api.delete(base).status_code == 403
    assert v2.get("/v2/del/off/manifests/v1").status_code == 200
