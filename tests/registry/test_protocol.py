"""The /v2 protocol through the in-process client: blobs, uploads, manifests,
tags, catalog, referrers, errors."""

from __future__ import annotations

import json
import os

import pytest

from registry.models import Blob, Manifest, RepositoryBlob, Tag, Upload

from .helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    InProcess,
    artifact,
    image,
    index,
    sha256,
)


@pytest.fixture
def reg(v2) -> InProcess:
    return InProcess(v2)


def error_code(response) -> str:
    return json.loads(response.content)["errors"][0]["code"]


def test_version_check(v2):
    r = v2.get("/v2/")
    assert r.status_code == 200
    assert r["Docker-Distribution-API-Version"] == "registry/2.0"


def test_monolithic_blob_push_then_pull(v2, reg):
    data = os.urandom(5000)
    digest = reg.put_blob("team/app", data)
    head = v2.head(f"/v2/team/app/blobs/{digest}")
    assert head.status_code == 200
    assert head["Content-Length"] == "5000"
    assert head["Docker-Content-Digest"] == digest
    got = v2.get(f"/v2/team/app/blobs/{digest}")
    assert got.status_code == 200
    assert b"".join(got.streaming_content) == data


def test_blob_range_requests(v2, reg):
    data = bytes(range(256)) * 40
    digest = reg.put_blob("r/a", data)
    r = v2.get(f"/v2/r/a/blobs/{digest}", HTTP_RANGE="bytes=10-19")
    assert r.status_code == 206
    assert r["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert b"".join(r.streaming_content) == data[10:20]
    r = v2.get(f"/v2/r/a/blobs/{digest}", HTTP_RANGE="bytes=-5")
    assert b"".join(r.streaming_content) == data[-5:]
    r = v2.get(f"/v2/r/a/blobs/{digest}", HTTP_RANGE=f"bytes={len(data)}-")
    assert r.status_code == 416
    assert r["Content-Range"] == f"bytes */{len(data)}"


def test_chunked_upload_with_status_and_out_of_order(v2):
    data = os.urandom(3 * 1000)
    r = v2.post("/v2/c/x/blobs/uploads/")
    assert r.status_code == 202
    loc = r["Location"]
    assert r["Range"] == "0-0"
    r = v2.patch(
        loc, data=data[:1000], content_type="application/octet-stream", HTTP_CONTENT_RANGE="0-999"
    )
    assert r.status_code == 202
    assert r["Range"] == "0-999"
    # Out of order: skips bytes 1000-1999.
    r = v2.patch(
        loc,
        data=data[2000:],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE="2000-2999",
    )
    assert r.status_code == 416
    assert r["Range"] == "0-999"
    # Overlapping: starts inside what was accepted.
    r = v2.patch(
        loc,
        data=data[500:1500],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE="500-1499",
    )
    assert r.status_code == 416
    status = v2.get(loc)
    assert status.status_code == 204
    assert status["Range"] == "0-999"
    r = v2.patch(
        loc,
        data=data[1000:2000],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE="1000-1999",
    )
    assert r.status_code == 202
    digest = sha256(data)
    r = v2.put(
        f"{loc}?digest={digest}",
        data=data[2000:],
        content_type="application/octet-stream",
        HTTP_CONTENT_RANGE="2000-2999",
    )
    assert r.status_code == 201, r.content
    assert r["Location"] == f"/v2/c/x/blobs/{digest}"
    got = v2.get(f"/v2/c/x/blobs/{digest}")
    assert b"".join(got.streaming_content) == data
    assert not Upload.objects.exists()


def test_upload_resumes_after_restart_without_hash_state(v2):
    """Sessions survive a restart: the running hash is rebuilt from stored bytes."""
    from registry.services import uploads

    data = os.urandom(4096)
    loc = v2.post("/v2/s/r/blobs/uploads/")["Location"]
    v2.patch(loc, data=data[:2048], content_type="application/octet-stream")
    uploads.reset()  # what a new process starts with
    v2.patch(loc, data=data[2048:], content_type="application/octet-stream")
    uploads.reset()
    r = v2.put(f"{loc}?digest={sha256(data)}")
    assert r.status_code == 201, r.content


def test_commit_retried_after_a_crash_between_storing_and_registering(v2):
    """A commit that stored the blob and died before writing its row (kill -9 of
    the replica, F40): the client's retried PUT finishes the upload instead of
    failing forever on bytes that already moved into the blob."""
    from registry.storage import blob_store

    data = os.urandom(3000)
    digest = sha256(data)
    loc = v2.post("/v2/crash/up/blobs/uploads/")["Location"]
    assert v2.patch(loc, data=data, content_type="application/octet-stream").status_code == 202
    blob_store().commit_upload(loc.rsplit("/", 1)[1], digest, len(data))  # then the crash
    assert not Blob.objects.filter(digest=digest).exists()
    assert v2.get(loc)["Range"] == f"0-{len(data) - 1}"
    r = v2.put(f"{loc}?digest={digest}")
    assert r.status_code == 201, r.content
    assert b"".join(v2.get(f"/v2/crash/up/blobs/{digest}").streaming_content) == data
    assert not Upload.objects.exists()
    assert list(blob_store().upload_ids()) == []


def test_upload_cannot_claim_a_stored_blob_it_did_not_send(v2, reg):
    """Finishing a session by a stored blob needs the session's own bytes to hash
    to it: naming another blob's digest is still a digest mismatch."""
    secret = os.urandom(500)
    reg.put_blob("crash/other", secret)
    loc = v2.post("/v2/crash/up/blobs/uploads/")["Location"]
    v2.patch(loc, data=b"mine", content_type="application/octet-stream")
    r = v2.put(f"{loc}?digest={sha256(secret)}")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    assert v2.get(f"/v2/crash/up/blobs/{sha256(secret)}").status_code == 404


def test_final_put_without_bytes_reads_nothing_back(v2, monkeypatch):
    """The last PATCH's running hash may be in another replica: a PUT that adds no
    bytes takes the accepted bytes' sha256 from the session row instead of
    reading the whole upload back to rebuild it."""
    from registry.services import uploads
    from registry.storage import blob_store

    data = os.urandom(5000)
    wrong, right = (v2.post("/v2/s/r/blobs/uploads/")["Location"] for _ in range(2))
    for loc in (wrong, right):
        v2.patch(loc, data=data, content_type="application/octet-stream")
    uploads.reset()  # the PUTs reach another process

    def read_upload(self, upload_id, size):
        raise AssertionError("the upload was read back")

    monkeypatch.setattr(type(blob_store()), "read_upload", read_upload)
    r = v2.put(f"{wrong}?digest={sha256(os.urandom(10))}")
    assert error_code(r) == "DIGEST_INVALID"
    r = v2.put(f"{right}?digest={sha256(data)}")
    assert r.status_code == 201, r.content
    assert b"".join(v2.get(f"/v2/s/r/blobs/{sha256(data)}").streaming_content) == data


def test_a_put_that_brings_the_last_bytes_writes_no_progress(v2):
    """POST then a PUT with the whole body (how most clients push small blobs):
    the session row is inserted and deleted, never updated in between: each
    write waits for SQLite's single writer, which bounds concurrent pushes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    data = os.urandom(2000)
    loc = v2.post("/v2/a/whole/blobs/uploads/")["Location"]
    with CaptureQueriesContext(connection) as queries:
        r = v2.put(f"{loc}?digest={sha256(data)}", data=data)
    assert r.status_code == 201, r.content
    table = Upload._meta.db_table
    writes = [
        q["sql"].split()[0]
        for q in queries.captured_queries
        if table in q["sql"] and not q["sql"].startswith("SELECT")
    ]
    assert writes == ["DELETE"]
    assert b"".join(v2.get(f"/v2/a/whole/blobs/{sha256(data)}").streaming_content) == data


def test_a_put_whose_commit_failed_can_be_sent_again(v2, monkeypatch):
    """Storage refuses the commit (a full disk): the PUT fails, and the session
    still holds only the bytes accepted before it, so the client's retry of the
    same PUT, body and all, stores the blob (not the body twice)."""
    import errno

    from registry.storage import blob_store

    data = os.urandom(3000)
    digest = sha256(data)
    loc = v2.post("/v2/a/retry/blobs/uploads/")["Location"]
    assert (
        v2.patch(loc, data=data[:1000], content_type="application/octet-stream").status_code == 202
    )
    commit = type(blob_store()).commit_upload

    def full_disk(self, upload_id, digest, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(blob_store()), "commit_upload", full_disk)
    r = v2.put(f"{loc}?digest={digest}", data=data[1000:])
    assert r.status_code == 503 and b"storage is full" in r.content, r.content
    assert v2.get(loc)["Range"] == "0-999"
    monkeypatch.setattr(type(blob_store()), "commit_upload", commit)
    r = v2.put(f"{loc}?digest={digest}", data=data[1000:])
    assert r.status_code == 201, r.content
    assert b"".join(v2.get(f"/v2/a/retry/blobs/{digest}").streaming_content) == data
    assert not Upload.objects.exists()


def test_a_patch_that_failed_on_a_full_disk_can_be_sent_again(v2, monkeypatch):
    """The disk fills while a chunk is written: 503, the session keeps only the
    bytes accepted before that PATCH, and the same PATCH sent again continues."""
    import contextlib
    import errno

    from registry.storage import blob_store

    data = os.urandom(3000)
    loc = v2.post("/v2/a/patchy/blobs/uploads/")["Location"]
    chunk = {"content_type": "application/octet-stream"}
    assert v2.patch(loc, data=data[:1000], HTTP_CONTENT_RANGE="0-999", **chunk).status_code == 202
    store = type(blob_store())
    upload_writer = store.upload_writer

    class FillingDisk:  # the store's writer, until the disk fills
        def __init__(self, writer):
            self._writer = writer

        def __getattr__(self, name):
            return getattr(self._writer, name)

        def write(self, block):
            self._writer.write(block[:10])  # a little got out before the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def filling(self, upload_id):
        with upload_writer(self, upload_id) as writer:
            yield FillingDisk(writer)

    monkeypatch.setattr(store, "upload_writer", filling)
    r = v2.patch(loc, data=data[1000:2000], HTTP_CONTENT_RANGE="1000-1999", **chunk)
    assert r.status_code == 503 and b"storage is full" in r.content, r.content
    assert v2.get(loc)["Range"] == "0-999"
    monkeypatch.setattr(store, "upload_writer", upload_writer)
    r = v2.patch(loc, data=data[1000:2000], HTTP_CONTENT_RANGE="1000-1999", **chunk)
    assert r.status_code == 202 and r["Range"] == "0-1999", r.content
    r = v2.put(f"{loc}?digest={sha256(data)}", data=data[2000:])
    assert r.status_code == 201, r.content
    assert b"".join(v2.get(f"/v2/a/patchy/blobs/{sha256(data)}").streaming_content) == data


def test_cancel_upload(v2):
    loc = v2.post("/v2/a/b/blobs/uploads/")["Location"]
    assert v2.delete(loc).status_code == 204
    assert v2.get(loc).status_code == 404
    assert error_code(v2.get(loc)) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_is_scoped_to_its_repository(v2):
    loc = v2.post("/v2/a/one/blobs/uploads/")["Location"]
    other = loc.replace("/a/one/", "/a/two/")
    assert v2.get(other).status_code == 404
    assert v2.get(loc).status_code == 204


def test_sha512_digest(v2):
    import hashlib

    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    loc = v2.post("/v2/h/five/blobs/uploads/")["Location"]
    v2.patch(loc, data=data, content_type="application/octet-stream")
    r = v2.put(f"{loc}?digest={digest}")
    assert r.status_code == 201, r.content
    assert v2.head(f"/v2/h/five/blobs/{digest}").status_code == 200


def test_cross_repository_mount(v2, reg):
    digest = reg.put_blob("src/repo", b"mounted bytes")
    r = v2.post(f"/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")
    assert r.status_code == 201
    assert r["Location"] == f"/v2/dst/repo/blobs/{digest}"
    assert v2.head(f"/v2/dst/repo/blobs/{digest}").status_code == 200


def test_mount_without_from(v2, reg):
    digest = reg.put_blob("src/any", b"findable bytes")
    r = v2.post(f"/v2/dst/auto/blobs/uploads/?mount={digest}")
    assert r.status_code == 201
    assert v2.head(f"/v2/dst/auto/blobs/{digest}").status_code == 200


def test_mount_of_unknown_blob_falls_back_to_upload(v2):
    digest = sha256(b"nobody has this")
    r = v2.post(f"/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")
    assert r.status_code == 202
    assert "/blobs/uploads/" in r["Location"]
    assert v2.head(f"/v2/dst/repo/blobs/{digest}").status_code == 404


def test_blob_is_readable_only_where_linked(v2, reg):
    digest = reg.put_blob("one/a", b"private to one")
    assert v2.head(f"/v2/one/b/blobs/{digest}").status_code == 404
    assert Blob.objects.filter(digest=digest).count() == 1


def test_blob_stored_once_for_two_repositories(v2, reg):
    data = os.urandom(100)
    reg.put_blob("dedupe/a", data)
    reg.put_blob("dedupe/b", data)
    assert Blob.objects.filter(digest=sha256(data)).count() == 1
    assert RepositoryBlob.objects.filter(blob__digest=sha256(data)).count() == 2


def test_manifest_put_get_head_by_tag_and_digest(v2, reg):
    digest, body = reg.push_image("app/web", "v1")
    assert digest == sha256(body)
    for ref in ("v1", digest):
        r = v2.get(f"/v2/app/web/manifests/{ref}", HTTP_ACCEPT=OCI_MANIFEST)
        assert r.status_code == 200
        assert r.content == body
        assert r["Content-Type"] == OCI_MANIFEST
        assert r["Docker-Content-Digest"] == digest
        h = v2.head(f"/v2/app/web/manifests/{ref}")
        assert h.status_code == 200
        assert h["Content-Length"] == str(len(body))
        assert h["Docker-Content-Digest"] == digest


def test_manifest_put_by_digest_with_tag_parameters(v2, reg):
    body, blobs = image()
    for data in blobs.values():
        reg.put_blob("app/tagged", data)
    digest = sha256(body)
    r = v2.put(
        f"/v2/app/tagged/manifests/{digest}?tag=a&tag=b", data=body, content_type=OCI_MANIFEST
    )
    assert r.status_code == 201
    assert r["OCI-Tag"] == "a, b"
    tags = json.loads(v2.get("/v2/app/tagged/tags/list").content)["tags"]
    assert tags == ["a", "b"]


def test_docker_schema2_and_manifest_list(v2, reg):
    docker_mt = "application/vnd.docker.distribution.manifest.v2+json"
    list_mt = "application/vnd.docker.distribution.manifest.list.v2+json"
    config, layer = b'{"os":"linux"}', os.urandom(300)
    reg.put_blob("d/img", config)
    reg.put_blob("d/img", layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": docker_mt,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    assert reg.put_manifest("d/img", "amd64", manifest, docker_mt).status_code == 201
    mlist = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": list_mt,
            "manifests": [
                {
                    "mediaType": docker_mt,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    assert reg.put_manifest("d/img", "latest", mlist, list_mt).status_code == 201
    r = v2.get("/v2/d/img/manifests/latest")
    assert r["Content-Type"] == list_mt
    assert r.content == mlist


def test_index_requires_children_and_protects_them(v2, reg):
    child_digest, child = reg.push_image("multi/arch", "amd64")
    idx = index([child])
    missing = index([image()[0]])
    r = reg.put_manifest("multi/arch", "bad", missing, OCI_INDEX)
    assert r.status_code == 400
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert reg.put_manifest("multi/arch", "latest", idx, OCI_INDEX).status_code == 201
    r = v2.delete(f"/v2/multi/arch/manifests/{child_digest}")
    assert r.status_code == 409
    assert Manifest.objects.filter(digest=child_digest).exists()
    assert v2.delete(f"/v2/multi/arch/manifests/{sha256(idx)}").status_code == 202
    assert v2.delete(f"/v2/multi/arch/manifests/{child_digest}").status_code == 202


def test_delete_tag_keeps_manifest(v2, reg):
    digest, _ = reg.push_image("del/tag", "v1")
    assert v2.delete("/v2/del/tag/manifests/v1").status_code == 202
    assert v2.get("/v2/del/tag/manifests/v1").status_code == 404
    assert v2.get(f"/v2/del/tag/manifests/{digest}").status_code == 200


def test_delete_manifest_removes_its_tags(v2, reg):
    digest, _ = reg.push_image("del/man", "v1")
    assert v2.delete(f"/v2/del/man/manifests/{digest}").status_code == 202
    assert v2.get("/v2/del/man/manifests/v1").status_code == 404
    assert not Tag.objects.filter(name="v1", repository__name="del/man").exists()
    assert v2.delete(f"/v2/del/man/manifests/{digest}").status_code == 404


def test_delete_blob_referenced_by_manifest_is_refused(v2, reg):
    layer = os.urandom(64)
    digest, _ = reg.push_image("del/blob", "v1", layers=[layer])
    r = v2.delete(f"/v2/del/blob/blobs/{sha256(layer)}")
    assert r.status_code == 409
    assert v2.head(f"/v2/del/blob/blobs/{sha256(layer)}").status_code == 200
    v2.delete(f"/v2/del/blob/manifests/{digest}")
    assert v2.delete(f"/v2/del/blob/blobs/{sha256(layer)}").status_code == 202
    assert v2.head(f"/v2/del/blob/blobs/{sha256(layer)}").status_code == 404


def test_tag_list_pagination_lexical(v2, reg):
    _digest, body = reg.push_image("pg/tags", "t0")
    for tag in ["b", "a", "c", "A", "z9", "10"]:
        assert reg.put_manifest("pg/tags", tag, body).status_code == 201
    everything = json.loads(v2.get("/v2/pg/tags/tags/list").content)["tags"]
    assert everything == sorted(["b", "a", "c", "A", "z9", "10", "t0"])
    r = v2.get("/v2/pg/tags/tags/list?n=3")
    page = json.loads(r.content)["tags"]
    assert page == everything[:3]
    assert r["Link"] == f'</v2/pg/tags/tags/list?last={page[-1]}&n=3>; rel="next"'
    r = v2.get(f"/v2/pg/tags/tags/list?n=3&last={page[-1]}")
    assert json.loads(r.content)["tags"] == everything[3:6]
    r = v2.get(f"/v2/pg/tags/tags/list?n=3&last={everything[5]}")
    assert json.loads(r.content)["tags"] == everything[6:]
    assert "Link" not in r


def test_tag_list_of_unknown_repository(v2):
    r = v2.get("/v2/no/such/tags/list")
    assert r.status_code == 404
    assert error_code(r) == "NAME_UNKNOWN"


def test_catalog_pagination(v2, reg):
    for name in ["cat/b", "cat/a", "cat/c"]:
        reg.push_image(name, "v1")
    r = v2.get("/v2/_catalog?n=2")
    assert json.loads(r.content)["repositories"] == ["cat/a", "cat/b"]
    assert r["Link"] == '</v2/_catalog?last=cat%2Fb&n=2>; rel="next"'
    r = v2.get("/v2/_catalog?n=2&last=cat/b")
    assert json.loads(r.content)["repositories"] == ["cat/c"]


def test_referrers(v2, reg):
    subject_digest, subject = reg.push_image("ref/app", "v1")
    sig, blobs = artifact(subject, "application/vnd.example.signature", b"sig")
    sbom, blobs2 = artifact(subject, "application/vnd.example.sbom", b"sbom")
    for data in {**blobs, **blobs2}.values():
        reg.put_blob("ref/app", data)
    r = reg.put_manifest("ref/app", sha256(sig), sig)
    assert r.status_code == 201
    assert r["OCI-Subject"] == subject_digest
    reg.put_manifest("ref/app", sha256(sbom), sbom)
    r = v2.get(f"/v2/ref/app/referrers/{subject_digest}")
    assert r.status_code == 200
    assert r["Content-Type"] == OCI_INDEX
    found = json.loads(r.content)["manifests"]
    assert {m["digest"] for m in found} == {sha256(sig), sha256(sbom)}
    assert {m["artifactType"] for m in found} == {
        "application/vnd.example.signature",
        "application/vnd.example.sbom",
    }
    assert found[0]["annotations"] == {"org.example.note": "hello"}
    r = v2.get(f"/v2/ref/app/referrers/{subject_digest}?artifactType=application/vnd.example.sbom")
    assert r["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in json.loads(r.content)["manifests"]] == [sha256(sbom)]


def test_referrers_empty_is_an_index_not_404(v2):
    r = v2.get(f"/v2/nothing/here/referrers/{sha256(b'x')}")
    assert r.status_code == 200
    assert json.loads(r.content) == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_subject_may_be_pushed_before_its_target(v2, reg):
    target, _ = image()
    art, blobs = artifact(target, "application/vnd.example.early", b"early")
    for data in blobs.values():
        reg.put_blob("early/ref", data)
    assert reg.put_manifest("early/ref", sha256(art), art).status_code == 201
    r = v2.get(f"/v2/early/ref/referrers/{sha256(target)}")
    assert [m["digest"] for m in json.loads(r.content)["manifests"]] == [sha256(art)]


def test_unsupported_method_is_an_oci_error(v2):
    r = v2.post("/v2/_catalog")
    assert r.status_code == 405
    assert error_code(r) == "UNSUPPORTED"


def test_unknown_v2_path(v2):
    r = v2.get("/v2/a/b/c/unknown-endpoint")
    assert r.status_code == 404
    assert "errors" in json.loads(r.content)


def test_request_that_lost_a_race_destroys_nothing(v2):
    """A stale view of a session (read before another request appended) must
    neither truncate the other request's bytes nor add its own."""
    import io

    from registry.errors import RegistryError
    from registry.services.uploads import upload_append, upload_get

    loc = v2.post("/v2/race/up/blobs/uploads/")["Location"]
    stale = upload_get(repository_name="race/up", upload_id=loc.rsplit("/", 1)[1])
    winner = os.urandom(100)
    v2.patch(loc, data=winner, content_type="application/octet-stream", HTTP_CONTENT_RANGE="0-99")
    with pytest.raises(RegistryError) as raised:
        upload_append(upload=stale, stream=io.BytesIO(b"loser"), length=5, start=0)
    assert raised.value.code.name == "RANGE_INVALID"
    assert v2.get(loc)["Range"] == "0-99"
    r = v2.put(f"{loc}?digest={sha256(winner)}")
    assert r.status_code == 201, r.content


def test_large_pushes_are_hashed_and_written_block_by_block(v2, reg):
    """Blocks are hashed and written on helper threads while the next is read:
    the stored bytes and the digest check must come out as if it all happened
    in one thread, for a monolithic PUT and for PATCH + PUT."""
    data = os.urandom(9 * 1024 * 1024 + 123)
    digest = reg.put_blob("a/big-one", data)  # monolithic: one PUT
    got = v2.get(f"/v2/a/big-one/blobs/{digest}")
    assert b"".join(got.streaming_content) == data
    half = len(data) // 2
    for wanted, status in ((data + b"x", 400), (data, 201)):
        loc = v2.post("/v2/a/big-two/blobs/uploads/")["Location"]
        r = v2.patch(loc, data=data[:half], content_type="application/octet-stream")
        assert r.status_code == 202
        r = v2.put(f"{r['Location']}?digest={sha256(wanted)}", data=data[half:])
        assert r.status_code == status, r.content
    assert not Blob.objects.filter(digest=sha256(data + b"x")).exists()
    got = v2.get(f"/v2/a/big-two/blobs/{sha256(data)}")
    assert b"".join(got.streaming_content) == data


def test_blob_files_go_to_the_servers_file_wrapper(v2, reg):
    """The lean /v2 handler keeps Django's hand-off to ``wsgi.file_wrapper``:
    a server that has one (gunicorn) sends blob files with sendfile, and
    closing what it returns (PEP 3333) closes the file and ends the request."""
    from django.core import signals
    from django.db import close_old_connections
    from django.test import RequestFactory

    from portal.wsgi import application
    from tests.conftest import ADMIN, basic

    data = os.urandom(300_000)
    digest = reg.put_blob("a/wrapped", data)
    wrapped = []

    class FileWrapper:  # what a server's wrapper does, minus the sendfile
        def __init__(self, filelike, block_size):
            wrapped.append(self)
            self.filelike, self.block_size = filelike, block_size

        def __iter__(self):
            return iter(lambda: self.filelike.read(self.block_size), b"")

        def close(self):
            self.filelike.close()

    environ = RequestFactory()._base_environ(
        PATH_INFO=f"/v2/a/wrapped/blobs/{digest}",
        REQUEST_METHOD="GET",
        HTTP_AUTHORIZATION=basic(*ADMIN),
    )
    environ["wsgi.file_wrapper"] = FileWrapper
    started, finished = [], []
    ended = lambda **kwargs: finished.append(True)  # noqa: E731
    # As Django's test client does: a request must not close the test's own
    # database connection (close_old_connections), which is in a transaction.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    signals.request_finished.connect(ended)
    try:
        body = application(environ, lambda status, headers: started.append((status, dict(headers))))
        assert b"".join(body) == data
        assert finished == []
        body.close()
    finally:
        signals.request_finished.disconnect(ended)
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)
    assert [w.block_size for w in wrapped] == [1024 * 1024]
    assert wrapped[0].filelike.closed
    assert finished == [True]
    status, headers = started[0]
    assert status == "200 OK"
    assert headers["Docker-Content-Digest"] == digest
    assert headers["Content-Length"] == str(len(data))


def test_request_signals_find_their_receivers_without_the_signals_lock():
    """Every request sends request_started and request_finished; the lean
    handler's application caches their receivers, so a request never waits
    for the signal's lock (a thread switched out while holding it stalled all
    the others under load). Here the lock is held while a request runs in
    another thread: it must still finish; a receiver connected afterwards is
    still called, and one disconnected is not."""
    import threading

    from django.core import signals
    from django.db import close_old_connections
    from django.test import RequestFactory

    from portal.wsgi import application

    def get_v2() -> str:
        environ = RequestFactory()._base_environ(PATH_INFO="/v2/", REQUEST_METHOD="GET")
        statuses: list[str] = []
        body = application(environ, lambda status, headers: statuses.append(status))
        b"".join(body)
        body.close()
        return statuses[0]

    seen: list[str] = []
    on_start = lambda **kwargs: seen.append("started")  # noqa: E731
    on_finish = lambda **kwargs: seen.append("finished")  # noqa: E731
    # As Django's test client does: no request here may touch the database.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        assert get_v2().startswith("401")  # the first request fills the cache
        done: list[str] = []
        with signals.request_started.lock, signals.request_finished.lock:
            worker = threading.Thread(target=lambda: done.append(get_v2()), daemon=True)
            worker.start()
            worker.join(timeout=20)
        assert done and done[0].startswith("401"), "the request waited for the signals' lock"

        signals.request_started.connect(on_start)
        signals.request_finished.connect(on_finish)
        get_v2()
        assert seen == ["started", "finished"]
        signals.request_started.disconnect(on_start)
        signals.request_finished.disconnect(on_finish)
        get_v2()
        assert seen == ["started", "finished"]
    finally:
        signals.request_started.disconnect(on_start)
        signals.request_finished.disconnect(on_finish)
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


def test_a_blob_put_registers_the_blob_without_savepoints(v2):
    """The registering transaction holds the database's write lock (SQLite:
    one writer at a time, the bound on concurrent pushes): no savepoints in
    it, for a new blob and for one another repository already has."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    data = os.urandom(1000)
    digest = sha256(data)
    for name in ("a/first", "a/second"):
        loc = v2.post(f"/v2/{name}/blobs/uploads/")["Location"]
        with CaptureQueriesContext(connection) as queries:
            r = v2.put(f"{loc}?digest={digest}", data=data, content_type="application/octet-stream")
        assert r.status_code == 201, r.content
        statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
        assert "SAVEPOINT" not in statements and "RELEASE" not in statements, statements
    blob = Blob.objects.get(digest=digest)
    assert blob.size == 1000
    linked = RepositoryBlob.objects.filter(blob=blob).values_list("repository__name", flat=True)
    assert sorted(linked) == ["a/first", "a/second"]
