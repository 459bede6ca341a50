"""Garbage collection from database references (registry/services/gc.py):
what goes, what stays, the window, dry runs, and the states that keep a push
racing a collection whole (docs/gc.md)."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from django.utils import timezone

from registry.models import Blob, Manifest, Repository, RepositoryBlob, Upload
from registry.services import gc, quotas
from registry.services.check import registry_check
from registry.storage import blob_store

from .helpers import OCI_INDEX, InProcess, artifact, image, index, sha256

NOW = gc.Options(window=datetime.timedelta(0))
UNTAGGED = gc.Options(window=datetime.timedelta(0), delete_untagged=True)


@pytest.fixture
def reg(v2, settings) -> InProcess:
    settings.BERTH_GC_MIN_WINDOW = 0
    return InProcess(v2)


def age(seconds: float = 3 * 3600) -> None:
    """Make every row older than the window (as hours passing would)."""
    then = timezone.now() - datetime.timedelta(seconds=seconds)
    Blob.objects.update(created_at=then)
    RepositoryBlob.objects.update(last_seen=then)
    Manifest.objects.update(last_seen=then)


def img(**kw):
    """An image whose config is its own (the helpers' default config is shared)."""
    return image(
        config=json.dumps({"architecture": "amd64", "n": os.urandom(8).hex()}).encode(), **kw
    )


def stored(digest: str) -> bool:
    return blob_store().blob_exists(digest)


def pull_ok(v2, name: str, ref: str, body: bytes, blobs: dict[str, bytes]) -> None:
    r = v2.get(f"/v2/{name}/manifests/{ref}")
    assert r.status_code == 200
    assert r.content == body
    for digest, data in blobs.items():
        r = v2.get(f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 200, digest
        assert b"".join(r.streaming_content if r.streaming else [r.content]) == data


def test_deleted_image_is_freed_and_kept_one_still_pulls(v2, reg):
    shared = os.urandom(3000)
    kept_body, kept_blobs = img(layers=[shared, os.urandom(2000)])
    gone_body, gone_blobs = img(layers=[shared, os.urandom(5000)])
    reg.push("app/kept", "v1", kept_body, kept_blobs)
    gone_digest, _ = reg.push("app/gone", "v1", gone_body, gone_blobs)
    assert v2.delete(f"/v2/app/gone/manifests/{gone_digest}").status_code == 202
    age()

    result = gc.collect(options=NOW)

    only_gone = set(gone_blobs) - set(kept_blobs)
    assert result.blobs == len(only_gone)
    assert result.freed_bytes == sum(len(gone_blobs[d]) for d in only_gone)
    assert result.links == len(gone_blobs)  # app/gone's links, the shared one's too
    for digest in only_gone:
        assert not stored(digest)
        assert not Blob.objects.filter(digest=digest).exists()
    assert stored(sha256(shared))
    pull_ok(v2, "app/kept", "v1", kept_body, kept_blobs)
    assert registry_check().ok


def test_the_window_protects_what_is_younger(v2, reg):
    digest = reg.put_blob("app/a", os.urandom(100))  # uploaded, never referenced
    result = gc.collect(options=gc.Options(window=datetime.timedelta(hours=2)))
    assert (result.links, result.blobs) == (0, 0)
    assert v2.head(f"/v2/app/a/blobs/{digest}").status_code == 200
    age()
    result = gc.collect(options=gc.Options(window=datetime.timedelta(hours=2)))
    assert (result.links, result.blobs) == (1, 1)
    assert v2.head(f"/v2/app/a/blobs/{digest}").status_code == 404
    assert not stored(digest)


def test_the_minimum_window_applies_to_a_zero_time_window(v2, reg, settings):
    settings.BERTH_GC_MIN_WINDOW = 600
    reg.put_blob("app/a", os.urandom(100))
    age(300)  # older than time_window 0, younger than the minimum
    assert gc.collect(options=NOW).blobs == 0
    age(900)
    assert gc.collect(options=NOW).blobs == 1


def test_a_head_restarts_the_window_of_what_it_promised(v2, reg, settings):
    settings.BERTH_GC_TOUCH_INTERVAL = 60
    digest = reg.put_blob("app/a", os.urandom(100))
    age()
    # docker push asks before uploading; the answer is a promise for the window.
    assert v2.head(f"/v2/app/a/blobs/{digest}").status_code == 200
    result = gc.collect(options=gc.Options(window=datetime.timedelta(hours=2)))
    assert (result.links, result.blobs) == (0, 0)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/octet-stream", "digest": digest, "size": 100},
            "layers": [],
        }
    ).encode()
    assert reg.put_manifest("app/a", "v1", body).status_code == 201


def test_a_mount_restarts_the_window(v2, reg):
    digest = reg.put_blob("app/src", os.urandom(100))
    body, blobs = image(layers=[])
    reg.push("app/src", "v1", body, blobs)  # keeps nothing of `digest`
    age()
    r = v2.post(f"/v2/app/dst/blobs/uploads/?mount={digest}&from=app/src")
    assert r.status_code == 201
    result = gc.collect(options=gc.Options(window=datetime.timedelta(hours=1)))
    assert result.blobs == 0
    assert v2.head(f"/v2/app/dst/blobs/{digest}").status_code == 200


def test_untagged_manifests_go_only_when_asked(v2, reg):
    body, blobs = img()
    digest, _ = reg.push("app/a", "v1", body, blobs)
    tagged_body, tagged_blobs = img()
    reg.push("app/a", "v2", tagged_body, tagged_blobs)
    assert v2.delete("/v2/app/a/manifests/v1").status_code == 202  # the tag only
    age()
    assert gc.collect(options=NOW).manifests == 0
    assert Manifest.objects.filter(digest=digest).exists()

    result = gc.collect(options=UNTAGGED)

    assert result.manifests == 1
    assert result.blobs == len(blobs)
    assert v2.get(f"/v2/app/a/manifests/{digest}").status_code == 404
    pull_ok(v2, "app/a", "v2", tagged_body, tagged_blobs)
    assert registry_check().ok


def test_untagged_children_of_a_tagged_index_and_referrers_of_a_tagged_image_stay(v2, reg):
    child_body, child_blobs = img()
    reg.push("app/a", sha256(child_body), child_body, child_blobs)
    idx = index([child_body])
    r = reg.put_manifest("app/a", "multi", idx, OCI_INDEX)
    assert r.status_code == 201
    subject_body, subject_blobs = img()
    reg.push("app/a", "signed", subject_body, subject_blobs)
    sig_body, sig_blobs = artifact(subject_body, "application/vnd.example.sig", b"sig")
    reg.push("app/a", sha256(sig_body), sig_body, sig_blobs)
    age()

    assert gc.collect(options=UNTAGGED).manifests == 0

    # The index and the image untagged: all of it goes, referrers after subjects.
    assert v2.delete("/v2/app/a/manifests/multi").status_code == 202
    assert v2.delete("/v2/app/a/manifests/signed").status_code == 202
    age()
    result = gc.collect(options=UNTAGGED)
    assert result.manifests == 4
    assert not Manifest.objects.exists()
    assert not Blob.objects.exists()
    assert registry_check().ok


def test_a_dry_run_counts_and_deletes_nothing(v2, reg):
    body, blobs = img(layers=[os.urandom(1000), os.urandom(2000)])
    reg.push("app/a", "v1", body, blobs)
    assert v2.delete("/v2/app/a/manifests/v1").status_code == 202
    age()

    dry = gc.collect(
        options=gc.Options(window=datetime.timedelta(0), delete_untagged=True, dry_run=True)
    )

    assert dry.manifests == 1
    assert dry.blobs == len(blobs)
    assert dry.freed_bytes == sum(len(b) for b in blobs.values())
    assert Manifest.objects.count() == 1
    assert all(stored(d) for d in blobs)
    real = gc.collect(options=UNTAGGED)
    assert (real.manifests, real.blobs, real.freed_bytes) == (
        dry.manifests,
        dry.blobs,
        dry.freed_bytes,
    )


def test_stale_upload_sessions_go(v2, reg, settings):
    settings.BERTH_UPLOAD_MAX_AGE = 3600
    r = v2.post("/v2/app/a/blobs/uploads/")
    assert r.status_code == 202
    Upload.objects.update(updated_at=timezone.now() - datetime.timedelta(hours=2))
    assert gc.collect(options=NOW).uploads == 1
    assert not Upload.objects.exists()


def test_workers_delete_in_parallel_batches(v2, reg):
    digests = [reg.put_blob("app/a", os.urandom(50)) for _ in range(23)]
    age()
    result = gc.collect(options=gc.Options(window=datetime.timedelta(0), workers=4))
    assert result.blobs == 23
    assert not any(stored(d) for d in digests)


def test_a_stop_request_stops_between_batches(v2, reg):
    reg.put_blob("app/a", os.urandom(50))
    age()
    with pytest.raises(gc.Stopped):
        gc.collect(options=NOW, should_stop=lambda: True)
    assert Blob.objects.count() == 1


# --- the states that keep a racing push whole -------------------------------------


def test_an_upload_of_a_blob_being_deleted_waits_for_the_sweep(v2, reg, settings):
    """Collection marked the blob (its bytes may be going): an upload of the
    same bytes does not move them in before the sweep is done."""
    settings.BERTH_GC_UPLOAD_WAIT = 0
    data = os.urandom(500)
    digest = reg.put_blob("app/a", data)
    RepositoryBlob.objects.all().delete()
    Blob.objects.filter(digest=digest).update(deleting=True)
    r = v2.post(
        f"/v2/app/b/blobs/uploads/?digest={digest}",
        data=data,
        content_type="application/octet-stream",
    )
    assert r.status_code == 429
    assert not RepositoryBlob.objects.exists()
    # The sweep finishes (bytes, then the row); the upload goes through after.
    gc.collect(options=NOW)
    assert not Blob.objects.exists()
    assert reg.put_blob("app/b", data) == digest
    assert stored(digest)
    assert Blob.objects.get(digest=digest).deleting is False


def test_a_registration_never_links_a_blob_being_deleted(v2, reg):
    """The upload found the blob live, collection marked it before the
    registration took the row lock: the upload's own bytes are stored once the
    sweep is done, and the blob it links has them."""
    from registry.services import uploads

    data = os.urandom(500)
    digest = reg.put_blob("app/a", data)
    RepositoryBlob.objects.all().delete()
    real_store = uploads._store

    def found_live_then_marked(store, upload_id, digest_, size):
        answer = real_store(store, upload_id, digest_, size)  # False: live, not moved
        Blob.objects.filter(digest=digest_).update(deleting=True)
        blob_store().delete_blob(digest_)  # the sweep's bytes, then its row
        Blob.objects.filter(digest=digest_).delete()
        return answer

    uploads._store = found_live_then_marked
    try:
        assert reg.put_blob("app/b", data) == digest
    finally:
        uploads._store = real_store
    assert stored(digest)
    assert v2.get(f"/v2/app/b/blobs/{digest}").status_code == 200
    assert registry_check().ok


def test_a_mount_of_a_blob_being_deleted_falls_back_to_an_upload(v2, reg):
    digest = reg.put_blob("app/src", os.urandom(100))
    Blob.objects.filter(digest=digest).update(deleting=True)
    r = v2.post(f"/v2/app/dst/blobs/uploads/?mount={digest}&from=app/src")
    assert r.status_code == 202
    assert not RepositoryBlob.objects.filter(repository__name="app/dst").exists()


def test_a_manifest_after_its_blob_was_swept_is_refused(v2, reg):
    body, blobs = img()
    for data in blobs.values():
        reg.put_blob("app/a", data)
    age()
    gc.collect(options=NOW)
    r = reg.put_manifest("app/a", "v1", body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert registry_check().ok


def test_registry_check_knows_a_sweep_in_progress(v2, reg):
    digest = reg.put_blob("app/a", os.urandom(100))
    Blob.objects.filter(digest=digest).update(deleting=True)
    report = registry_check()
    assert report.errors == [f"blob {digest}: linked into app/a while being deleted"]
    RepositoryBlob.objects.all().delete()
    quotas.reconcile()  # as the collector's link delete releases the charge
    blob_store().delete_blob(digest)  # a run stopped between the bytes and the row
    report = registry_check()
    assert report.ok
    assert report.warnings == [f"blob {digest}: being deleted by garbage collection"]
    gc.collect(options=NOW)
    assert registry_check().warnings == []
    assert not Blob.objects.exists()


def test_usage_is_exact_after_a_collection_without_the_reconcile(v2, reg):
    """The collector releases the charges of the links and untagged manifests it
    deletes in the same transaction: usage and charges match what the project
    holds as soon as the run ends (no reconcile run here)."""
    shared = os.urandom(3000)
    kept_body, kept_blobs = img(layers=[shared, os.urandom(2000)])
    gone_body, gone_blobs = img(layers=[shared, os.urandom(5000)])
    loose_body, loose_blobs = img(layers=[os.urandom(700)])
    reg.push("app/kept", "v1", kept_body, kept_blobs)
    gone_digest, _ = reg.push("app/gone", "v1", gone_body, gone_blobs)
    reg.push("app/loose", "v1", loose_body, loose_blobs)
    # Untag the loose one (its manifest goes with delete_untagged), leave a blob
    # no manifest uses (its link goes), delete the gone one.
    assert v2.delete("/v2/app/loose/manifests/v1").status_code == 202
    stray = os.urandom(4000)
    reg.put_blob("app/kept", stray)
    assert v2.delete(f"/v2/app/gone/manifests/{gone_digest}").status_code == 202
    app = Repository.objects.get(name="app/kept").project_id
    before = quotas.usage([app])[app]
    age()

    result = gc.collect(options=UNTAGGED)

    assert result.manifests == 1
    after = quotas.usage([app])[app]
    assert after == len(kept_body) + sum(len(b) for b in kept_blobs.values())
    only_gone = set(gone_blobs) - set(kept_blobs)
    assert before - after == (
        len(stray)
        + sum(len(gone_blobs[d]) for d in only_gone)
        + len(loose_body)
        + sum(len(b) for b in loose_blobs.values())
    )
    assert quotas.verify() == []
    assert registry_check().ok
