"""The filesystem blob store's background syncs (registry/storage/filesystem.py)."""

from __future__ import annotations

import json
import os

from registry.models import Blob
from registry.storage import filesystem

from .helpers import InProcess, sha256


def test_a_large_upload_reaches_the_disk_while_it_arrives(v2, monkeypatch):
    """Without syncs during the upload, the commit's fsync makes the client wait
    for the whole file to be written back."""
    monkeypatch.setattr(filesystem, "SYNC_EVERY", 1024 * 1024)
    syncs = []
    real_sync = os.fdatasync
    monkeypatch.setattr(filesystem.os, "fdatasync", lambda fd: (syncs.append(fd), real_sync(fd)))
    data = os.urandom(9 * 1024 * 1024)
    digest = InProcess(v2).put_blob("a/synced", data)
    assert syncs
    assert b"".join(v2.get(f"/v2/a/synced/blobs/{digest}").streaming_content) == data


def test_a_failed_background_sync_fails_the_upload_and_keeps_nothing(v2, monkeypatch):
    """The kernel reports a write-back error to one sync only: the helper's
    error must fail the request, or the commit's own fsync would miss it."""
    monkeypatch.setattr(filesystem, "SYNC_EVERY", 1024 * 1024)

    def broken_sync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(filesystem.os, "fdatasync", broken_sync)
    data = os.urandom(4 * 1024 * 1024)
    loc = v2.post("/v2/a/eio/blobs/uploads/")["Location"]
    r = v2.put(f"{loc}?digest={sha256(data)}", data=data, content_type="application/octet-stream")
    assert r.status_code == 503, r.content
    assert json.loads(r.content)["errors"][0]["code"] == "UNAVAILABLE"
    assert v2.head(f"/v2/a/eio/blobs/{sha256(data)}").status_code == 404
    assert not Blob.objects.filter(digest=sha256(data)).exists()
    monkeypatch.undo()
    loc = v2.post("/v2/a/eio/blobs/uploads/")["Location"]
    r = v2.put(f"{loc}?digest={sha256(data)}", data=data, content_type="application/octet-stream")
    assert r.status_code == 201
