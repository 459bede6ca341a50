"""The blob store contract (registry/storage/base.py), one suite for every backend.

A new backend joins by adding a factory to BACKENDS; nothing else changes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.storage import BlobStore, UploadBusy
from registry.storage.filesystem import FileSystemBlobStore


def filesystem(tmp: Path) -> BlobStore:
    return FileSystemBlobStore(location=str(tmp / "store"))


def s3(tmp: Path) -> BlobStore:
    """A fresh bucket on a real MinIO server (tests/s3.py)."""
    from tests.s3 import s3_store

    return s3_store()


BACKENDS: dict[str, Callable[[Path], BlobStore]] = {"filesystem": filesystem, "s3": s3}
LIVE = {"s3"}  # a MinIO server


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.live] * (name in LIVE)) for name in sorted(BACKENDS)
    ]
)
def store(request, tmp_path) -> BlobStore:
    return BACKENDS[request.param](tmp_path)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_all(store: BlobStore, digest: str) -> bytes:
    with store.open_blob(digest) as fh:
        return fh.read()


def test_upload_append_commit_read(store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    store.start_upload("u1")
    with store.upload_writer("u1") as w:
        w.begin(0)
        w.write(data[:1000])
    with store.upload_writer("u1") as w:
        w.begin(1000)
        w.write(data[1000:])
    assert b"".join(store.read_upload("u1", len(data))) == data
    digest = digest_of(data)
    assert not store.blob_exists(digest)
    store.commit_upload("u1", digest, len(data))
    assert store.blob_exists(digest)
    assert store.blob_size(digest) == len(data)
    assert read_all(store, digest) == data
    assert list(store.blob_digests()) == [digest]
    assert list(store.upload_ids()) == []


def test_open_blob_is_seekable(store):
    data = bytes(range(256)) * 10
    store.start_upload("u")
    with store.upload_writer("u") as w:
        w.begin(0)
        w.write(data)
    store.commit_upload("u", digest_of(data), len(data))
    with store.open_blob(digest_of(data)) as fh:
        fh.seek(300)
        assert fh.read(10) == data[300:310]


def test_failed_write_adds_nothing(store):
    store.start_upload("u")
    with store.upload_writer("u") as w:
        w.begin(0)
        w.write(b"kept")
    with pytest.raises(RuntimeError), store.upload_writer("u") as w:
        w.begin(4)
        w.write(b"lost bytes")
        raise RuntimeError("client went away")
    assert b"".join(store.read_upload("u", 4)) == b"kept"
    with pytest.raises(OSError):
        b"".join(store.read_upload("u", 5))


def test_writer_discards_bytes_past_offset(store):
    """Bytes of a crashed request beyond the accepted offset are dropped."""
    store.start_upload("u")
    with store.upload_writer("u") as w:
        w.begin(0)
        w.write(b"accepted+garbage")
    with store.upload_writer("u") as w:
        w.begin(8)
        w.write(b"-more")
    assert b"".join(store.read_upload("u", 13)) == b"accepted-more"


def test_concurrent_writer_is_refused(store):
    store.start_upload("u")
    entered, release = threading.Event(), threading.Event()

    def hold():
        with store.upload_writer("u") as w:
            w.begin(0)
            w.write(b"a")
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(10)
    try:
        with pytest.raises(UploadBusy), store.upload_writer("u"):
            pass
    finally:
        release.set()
        t.join()


def test_begin_refuses_an_offset_the_bytes_do_not_reach(store):
    store.start_upload("short")
    with store.upload_writer("short") as w:
        w.begin(0)
        w.write(b"abc")
    with pytest.raises(OSError), store.upload_writer("short") as w:
        w.begin(10)
    assert b"".join(store.read_upload("short", 3)) == b"abc"


def test_commit_of_existing_blob_keeps_it_intact(store):
    data = b"same content twice"
    for upload_id in ("a", "b"):
        store.start_upload(upload_id)
        with store.upload_writer(upload_id) as w:
            w.begin(0)
            w.write(data)
        store.commit_upload(upload_id, digest_of(data), len(data))
    assert read_all(store, digest_of(data)) == data
    assert list(store.upload_ids()) == []


def test_commit_truncates_to_the_verified_size(store):
    store.start_upload("u")
    with store.upload_writer("u") as w:
        w.begin(0)
        w.write(b"verified" + b"tail-from-a-crash")
    store.commit_upload("u", digest_of(b"verified"), 8)
    assert read_all(store, digest_of(b"verified")) == b"verified"


def test_delete_upload_and_blob(store):
    store.start_upload("gone")
    store.delete_upload("gone")
    store.delete_upload("gone")  # idempotent
    assert list(store.upload_ids()) == []
    store.start_upload("b")
    with store.upload_writer("b") as w:
        w.begin(0)
        w.write(b"x")
    store.commit_upload("b", digest_of(b"x"), 1)
    store.delete_blob(digest_of(b"x"))
    store.delete_blob(digest_of(b"x"))
    assert not store.blob_exists(digest_of(b"x"))


def test_delete_blobs_deletes_many_and_ignores_absent(store):
    digests = []
    for n in range(5):
        data = f"blob {n}".encode()
        store.start_upload(f"u{n}")
        with store.upload_writer(f"u{n}") as w:
            w.begin(0)
            w.write(data)
        store.commit_upload(f"u{n}", digest_of(data), len(data))
        digests.append(digest_of(data))
    store.delete_blobs([*digests[:3], digest_of(b"never stored")])
    assert [store.blob_exists(d) for d in digests] == [False, False, False, True, True]
    store.delete_blobs([])
    assert sorted(store.blob_digests()) == sorted(digests[3:])
