"""What the S3 blob store does beyond the shared contract, against a real MinIO
(tests/s3.py): multipart commits by server-side copy, bounded memory, bucket
creation, leases, ranged reads, the settings URL, and a live Berth on S3."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest
import requests
from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured

from registry.storage import UploadBusy
from registry.storage.s3 import MIN_PART, MiB, S3BlobStore
from tests.conftest import ADMIN, REPO_ROOT, BerthServer
from tests.s3 import PEERS, new_bucket_name, s3_store, shared_minio
from tests.support import wait_until

from .helpers import Remote, image, sha256


@pytest.fixture(scope="module")
def minio():
    return shared_minio()


def keys(store: S3BlobStore, prefix: str = "") -> list[str]:
    return [item["Key"] for item in store._list(store._key(prefix))]


def upload(store: S3BlobStore, upload_id: str, chunks: list[bytes]) -> bytes:
    """One writer session per chunk, as one request per chunk would."""
    offset = 0
    for chunk in chunks:
        with store.upload_writer(upload_id) as w:
            w.begin(offset)
            w.write(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_blob(store: S3BlobStore, digest: str) -> bytes:
    with store.open_blob(digest) as fh:
        return fh.read()


def multipart_parts(store: S3BlobStore, digest: str) -> int:
    """How many parts S3 assembled the blob from (0: a single PUT or copy)."""
    etag = store._head(store._blob_key(digest))["ETag"].strip('"')
    return int(etag.rpartition("-")[2]) if "-" in etag else 0


@pytest.mark.parametrize(
    "sizes",
    [
        [12 * MiB + 5],  # one request: parts of 5, 5 and 2 MiB, copied server-side
        [MiB, 3 * MiB, 7 * MiB, 100, 6 * MiB],  # small chunks gathered, big ones copied
        [MIN_PART - 1] * 3,  # nothing big enough to copy: streamed into 5 MiB parts
    ],
)
def test_multipart_commit(minio, sizes):
    store = s3_store(part_size=MIN_PART)
    data = upload(store, "u", [os.urandom(n) for n in sizes])
    digest = sha256(data)
    store.commit_upload("u", digest, len(data))
    assert store.blob_size(digest) == len(data)
    assert read_blob(store, digest) == data
    assert multipart_parts(store, digest) >= 2
    assert keys(store, "uploads/") == []


def test_commit_cuts_a_crashed_tail_inside_a_copied_part(minio):
    """A part that holds bytes past the accepted size (a crash) is copied by range."""
    store = s3_store(part_size=MIN_PART)
    accepted, garbage, more = os.urandom(6 * MiB), os.urandom(3 * MiB), os.urandom(6 * MiB)
    upload(store, "u", [accepted + garbage])  # parts 0-5 MiB and 5-9 MiB
    with store.upload_writer("u") as w:
        w.begin(len(accepted))  # the database accepted 6 MiB only
        w.write(more)
    data = accepted + more
    store.commit_upload("u", sha256(data), len(data))
    assert read_blob(store, sha256(data)) == data


def test_small_blob_is_one_copy(minio):
    store = s3_store()
    data = upload(store, "u", [os.urandom(1000)])
    store.commit_upload("u", sha256(data), len(data))
    assert multipart_parts(store, sha256(data)) == 0
    assert read_blob(store, sha256(data)) == data


def test_commit_of_an_existing_blob_only_drops_the_parts(minio):
    store = s3_store()
    data = upload(store, "a", [b"same"])
    store.commit_upload("a", sha256(data), 4)
    before = store._head(store._blob_key(sha256(data)))["LastModified"]
    upload(store, "b", [b"same"])
    store.commit_upload("b", sha256(data), 4)
    assert store._head(store._blob_key(sha256(data)))["LastModified"] == before
    assert keys(store, "uploads/") == []


def test_memory_stays_bounded(minio):
    """A 64 MiB blob: written in 1 MiB requests reads, committed, read back and
    hashed; Python's peak allocation stays near one part, far below the blob."""
    store = s3_store()  # default part_size: 8 MiB
    size = 64 * MiB
    block = os.urandom(MiB)
    expect = hashlib.sha256()
    for _ in range(size // MiB):
        expect.update(block)
    digest = "sha256:" + expect.hexdigest()
    store.blob_exists(digest)  # the client and bucket are set up outside the measure

    tracemalloc.start()
    try:
        with store.upload_writer("big") as w:
            w.begin(0)
            for _ in range(size // MiB):
                w.write(block)
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.commit_upload("big", digest, size)
        _, peak_commit = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        with store.open_blob(digest) as fh:
            while data := fh.read(MiB):
                got.update(data)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == expect.hexdigest()
    assert multipart_parts(store, digest) == 8
    print(
        f"peak Python allocation for a 64 MiB blob: write {peak_write / MiB:.1f} MiB, "
        f"commit {peak_commit / MiB:.1f} MiB, read {peak_read / MiB:.1f} MiB"
    )
    assert peak_write < 12 * MiB  # one 8 MiB part buffer
    assert peak_commit < 4 * MiB  # server-side copies only
    assert peak_read < 4 * MiB  # 1 MiB blocks


def test_missing_bucket_is_created(minio):
    bucket = new_bucket_name()
    client = minio.client()
    with pytest.raises(ClientError):
        client.head_bucket(Bucket=bucket)
    store = S3BlobStore(**minio.store_options(bucket))
    assert list(store.blob_digests()) == []
    client.head_bucket(Bucket=bucket)


def test_missing_bucket_is_an_error_when_creation_is_off(minio):
    store = S3BlobStore(**minio.store_options(new_bucket_name(), create_bucket=False))
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        store.blob_exists("sha256:" + "0" * 64)


def test_server_without_conditional_writes_is_refused(minio, monkeypatch):
    """A server that ignores If-None-Match (simulated: the header never leaves the
    client) would break upload leases: the store refuses to start, clearly."""
    create = S3BlobStore._create_session

    def session_without_conditions(self):  # type: ignore[no-untyped-def]
        session = create(self)

        def drop(params, **_):  # type: ignore[no-untyped-def]
            params.pop("IfNoneMatch", None)

        session.events.register("before-parameter-build.s3.PutObject", drop)
        return session

    monkeypatch.setattr(S3BlobStore, "_create_session", session_without_conditions)
    store = S3BlobStore(**minio.store_options(new_bucket_name()))
    with pytest.raises(ImproperlyConfigured, match="conditional writes"):
        store.blob_exists("sha256:" + "0" * 64)
    # The probe left nothing behind.
    assert list(minio.client().list_objects_v2(Bucket=store.bucket_name).get("Contents", [])) == []


def test_conditional_write_probe_passes_and_leaves_nothing(minio):
    store = s3_store()
    assert store.blob_exists("sha256:" + "0" * 64) is False
    assert keys(store) == []
    assert minio.client().list_objects_v2(Bucket=store.bucket_name).get("KeyCount") == 0


def test_unfinished_multipart_uploads_are_aborted(minio):
    """A commit that died between creating and completing a multipart upload
    leaves it billed and invisible; the purge job aborts those under the store's
    prefix once old enough, and nothing else."""
    store = s3_store()
    store.upload_ids()  # the store creates its bucket on first use
    assert list(store.upload_ids()) == []
    client = minio.client()
    bucket = store.bucket_name
    dead = client.create_multipart_upload(Bucket=bucket, Key=store._key("blobs/sha256/aa/x"))
    outside = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/object")

    def open_uploads() -> set[str]:
        return {
            u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        }

    assert store.abort_stale_transfers(datetime.timedelta(hours=1)) == 0  # too young
    assert open_uploads() == {dead["UploadId"], outside["UploadId"]}
    time.sleep(1.1)  # ages both past 1 s (same clock): a slower machine only ages them more
    assert store.abort_stale_transfers(datetime.timedelta(seconds=1)) == 1
    assert open_uploads() == {outside["UploadId"]}
    client.abort_multipart_upload(
        Bucket=bucket, Key="elsewhere/object", UploadId=outside["UploadId"]
    )


def test_layout_under_the_prefix(minio):
    store = s3_store(location="team/registry", part_size=MIN_PART)
    data = upload(store, "u", [b"abc"])
    with store.upload_writer("v") as w:
        w.begin(0)
        w.write(b"xyz")
        assert keys(store, "uploads/v/") == ["team/registry/uploads/v/lock"]
        w.flush()
        [part] = [k for k in keys(store, "uploads/v/") if "/parts/" in k]
        assert part.startswith("team/registry/uploads/v/parts/00000000000000000000-")
    store.commit_upload("u", sha256(data), 3)
    hexpart = sha256(data).split(":")[1]
    assert keys(store, "blobs/") == [f"team/registry/blobs/sha256/{hexpart[:2]}/{hexpart}"]
    assert sorted(store.upload_ids()) == ["v"]
    assert list(store.blob_digests()) == [sha256(data)]


def test_parts_of_a_failed_request_are_removed(minio):
    store = s3_store(part_size=MIN_PART)
    upload(store, "u", [b"kept"])
    with pytest.raises(RuntimeError), store.upload_writer("u") as w:
        w.begin(4)
        w.write(os.urandom(12 * MiB))  # two parts stored before the failure
        assert len(keys(store, "uploads/u/parts/")) == 3
        raise RuntimeError("client went away")
    assert len(keys(store, "uploads/u/parts/")) == 1
    assert keys(store, "uploads/u/lock") == []
    assert b"".join(store.read_upload("u", 4)) == b"kept"


def test_begin_drops_parts_of_a_crashed_request(minio):
    store = s3_store(part_size=MIN_PART)
    upload(store, "u", [b"x" * 10, os.urandom(11 * MiB)])  # the database accepted 10 bytes
    with store.upload_writer("u") as w:
        w.begin(10)
        assert len(keys(store, "uploads/u/parts/")) == 1
        w.write(b"y")
    assert b"".join(store.read_upload("u", 11)) == b"x" * 10 + b"y"


def test_flushed_bytes_are_visible_to_another_process(minio):
    """The service flushes before it records the new size: another replica that
    takes over the session finds the bytes."""
    store = s3_store()
    other = S3BlobStore(**{**minio.store_options(store.bucket_name), "location": store.location})
    with store.upload_writer("u") as w:
        w.begin(0)
        w.write(b"accepted")
        w.flush()
        assert b"".join(other.read_upload("u", 8)) == b"accepted"
        with pytest.raises(UploadBusy), other.upload_writer("u"):
            pass


def test_lease_of_a_dead_writer_expires(minio):
    """Busy while fresh, taken over once unrenewed for lock_ttl. lock_ttl is 5 s
    (ages are counted in the server's whole seconds): the first refusal holds
    unless the two requests are 4 s apart; the takeover is waited for."""
    store = s3_store(lock_ttl=5)
    client = store._client()
    lock = store._upload_prefix("u") + "lock"
    client.put_object(Bucket=store.bucket_name, Key=lock, Body=b"crashed writer")
    with pytest.raises(UploadBusy), store.upload_writer("u"):
        pass

    def take_over() -> bool:
        try:
            with store.upload_writer("u") as w:
                w.begin(0)
                w.write(b"mine now")
        except UploadBusy:
            return False
        return True

    wait_until(take_over, interval=0.5, what="the dead writer's lease expired")
    assert b"".join(store.read_upload("u", 8)) == b"mine now"


def test_open_writer_keeps_its_lease(minio):
    """A writer idle for longer than lock_ttl (a slow client) still holds the upload:
    the heartbeat renews its lease."""
    store = s3_store(lock_ttl=3)
    other = S3BlobStore(**{**minio.store_options(store.bucket_name), "location": store.location})
    with store.upload_writer("u") as w:
        w.begin(0)
        # Idle past lock_ttl (a slower machine idles longer); the heartbeat
        # renews every 0.75 s, so only a stall of 2 s or more could fail this.
        time.sleep(4.5)
        with pytest.raises(UploadBusy), other.upload_writer("u"):
            pass
        w.write(b"late bytes")
    assert b"".join(store.read_upload("u", 10)) == b"late bytes"


def test_writer_that_lost_its_lease_stops(minio):
    store = s3_store(lock_ttl=1, part_size=MIN_PART)
    client = store._client()
    lock = store._upload_prefix("u") + "lock"
    with pytest.raises(UploadBusy), store.upload_writer("u") as w:
        w.begin(0)
        w.write(os.urandom(MIN_PART))  # one part stored
        client.put_object(Bucket=store.bucket_name, Key=lock, Body=b"someone else")
        wait_until(lambda: w._lease.lost, what="the heartbeat noticed")
        w.write(os.urandom(MIN_PART))
    assert keys(store, "uploads/u/parts/") == []  # it removed what it wrote
    assert client.get_object(Bucket=store.bucket_name, Key=lock)["Body"].read() == b"someone else"


def test_two_writers_race_for_one_upload(minio):
    store = s3_store()
    results: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            with store.upload_writer("u") as w:
                w.begin(0)
                w.write(b"%d" % i)
                time.sleep(0.5)
            results.append("wrote")
        except UploadBusy:
            results.append("busy")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["busy", "busy", "busy", "wrote"]
    assert len(keys(store, "uploads/u/parts/")) == 1


def test_open_blob_reads_ranges(minio):
    store = s3_store(read_window=MiB)
    data = os.urandom(3 * MiB + 123)
    upload(store, "u", [data])
    digest = sha256(data)
    store.commit_upload("u", digest, len(data))
    with store.open_blob(digest) as fh:
        assert fh.seekable() and fh.readable()
        assert fh.read(10) == data[:10]
        fh.seek(MiB - 5)  # across a window boundary
        assert fh.read(10) == data[MiB - 5 : MiB + 5]
        assert fh.tell() == MiB + 5
        fh.seek(-100, io.SEEK_END)
        assert fh.read(1000) == data[-100:]
        assert fh.read(1) == b""
        fh.seek(2 * MiB)
        assert fh.read() == data[2 * MiB :]
        fh.seek(5, io.SEEK_SET)
        fh.seek(5, io.SEEK_CUR)
        buf = bytearray(7)
        assert fh.readinto(buf) == 7 and bytes(buf) == data[10:17]
    assert fh.closed
    with store.open_blob(digest) as fh:
        blocks = [len(b) for b in iter(lambda: fh.read(MiB), b"")]
    assert blocks == [MiB, MiB, MiB, 123]
    with pytest.raises(FileNotFoundError):
        store.open_blob(sha256(b"not there"))


def test_file_response_streams_it(minio):
    """Django's FileResponse (the blob view's) reads the length by seeking and
    streams the blob in its block size."""
    from django.http import FileResponse

    store = s3_store()
    data = os.urandom(2 * MiB + 1)
    upload(store, "u", [data])
    store.commit_upload("u", sha256(data), len(data))
    fh = store.open_blob(sha256(data))
    response = FileResponse(fh)
    response.block_size = MiB
    assert response["Content-Length"] == str(len(data))
    assert b"".join(response.streaming_content) == data
    fh.close()  # (response.close() would also signal request_finished to the database)


def settings_blobs(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES['blobs']))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", "BERTH_STORAGE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_storage_url_selects_s3(tmp_path):
    url = (
        "s3://my-bucket/berth/blobs?endpoint=http://127.0.0.1:9000&region=eu-west-1"
        "&path_style=true&create_bucket=false&part_size=16777216"
    )
    result = settings_blobs(url, BERTH_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "BACKEND": "registry.storage.s3.S3BlobStore",
        "OPTIONS": {
            "bucket_name": "my-bucket",
            "location": "berth/blobs",
            "endpoint_url": "http://127.0.0.1:9000",
            "region_name": "eu-west-1",
            "create_bucket": False,
            "addressing_style": "path",
            "part_size": 16777216,
        },
    }
    plain = json.loads(settings_blobs("s3://b", BERTH_DATA_DIR=str(tmp_path)).stdout)
    assert plain["OPTIONS"] == {
        "bucket_name": "b",
        "location": "",
        "endpoint_url": None,
        "region_name": None,
        "create_bucket": True,
    }


URL_SECRET = "wJalrXUtn-never-echoed"


@pytest.mark.parametrize(
    "url",
    [
        f"s3://key:{URL_SECRET}@bucket/prefix",  # credentials never go in the URL
        "s3://bucket?colour=blue",
        "s3://bucket?path_style=maybe",
        "s3://bucket?part_size=8M",
        "gs://bucket",
    ],
)
def test_storage_url_mistakes_stop_the_start(url, tmp_path):
    result = settings_blobs(url, BERTH_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "BERTH_STORAGE_URL" in result.stderr
    # The credential itself (not the word: a checkout's path may hold it).
    assert URL_SECRET not in result.stderr


@pytest.fixture
def s3_berth(minio, tmp_path):
    bucket = new_bucket_name()
    url = f"s3://{bucket}/berth?endpoint={minio.endpoint}&region=us-east-1&path_style=true"
    servers: list[BerthServer] = []

    def start(**env: str) -> BerthServer:
        server = BerthServer(
            tmp_path / f"data{len(servers)}",
            env={"BERTH_STORAGE_URL": url, **minio.credentials_env, **env},
        )
        servers.append(server)
        server.start()
        server.create_projects(["s3"])
        return server

    start.bucket = bucket  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.stop()


def test_push_and_pull_through_berth_on_s3(s3_berth, minio):
    server = s3_berth()
    http = requests.Session()
    http.auth = ADMIN
    layer = os.urandom(13 * MiB + 7)  # chunked: 6 MiB + 1 MiB + the rest
    body, blobs = image(layers=[layer, os.urandom(3000)])
    r = http.post(f"{server.url}/v2/s3/app/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = server.url + r.headers["Location"]
    offset = 0
    for chunk in (layer[: 6 * MiB], layer[6 * MiB : 7 * MiB], layer[7 * MiB :]):
        r = http.patch(
            location,
            data=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert r.status_code == 202, r.text
        offset += len(chunk)
        location = server.url + r.headers["Location"]
    r = http.put(location, params={"digest": sha256(layer)})
    assert r.status_code == 201, r.text
    reg = Remote(server.url)
    for digest, data in blobs.items():
        if digest != sha256(layer):
            reg.put_blob("s3/app", data)
    r = reg.put_manifest("s3/app", "v1", body)
    assert r.status_code == 201, r.text

    r = http.get(
        f"{server.url}/v2/s3/app/manifests/v1", headers={"Accept": json.loads(body)["mediaType"]}
    )
    assert r.content == body
    for digest, data in blobs.items():
        r = http.get(f"{server.url}/v2/s3/app/blobs/{digest}")
        assert r.status_code == 200
        assert r.content == data
    r = http.get(
        f"{server.url}/v2/s3/app/blobs/{sha256(layer)}", headers={"Range": "bytes=100-199"}
    )
    assert r.status_code == 206 and r.content == layer[100:200]

    # Everything is in the bucket, nothing on the local disk.
    client = minio.client()
    stored = [o["Key"] for o in client.list_objects_v2(Bucket=s3_berth.bucket)["Contents"]]
    assert sorted(stored) == sorted(f"berth/blobs/sha256/{d[7:9]}/{d[7:]}" for d in blobs)
    assert not (server.data_dir / "registry" / "blobs").exists()
    result = server.manage("registry_check")
    assert "0 errors" in result.stdout, result.stdout + result.stderr
    server.stop()
    logged = server.log_path.read_text() + result.stdout + result.stderr
    assert minio.secret_key not in logged


def test_blob_get_redirects_to_a_presigned_url(s3_berth, tmp_path):
    server = s3_berth(BERTH_STORAGE_REDIRECT="true")
    layer = os.urandom(100_000)
    Remote(server.url).push_image("s3/redirect", "v1", layers=[layer])
    url = f"{server.url}/v2/s3/redirect/blobs/{sha256(layer)}"
    r = requests.get(url, auth=ADMIN, allow_redirects=False)
    assert r.status_code == 307
    assert "X-Amz-Signature=" in r.headers["Location"]
    assert r.headers["Docker-Content-Digest"] == sha256(layer)
    r = requests.get(r.headers["Location"])  # no credentials: the URL is the grant
    assert r.content == layer
    r = requests.get(url, auth=ADMIN, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == layer[10:20]
    missing = f"{server.url}/v2/s3/redirect/blobs/{sha256(b'nope')}"
    r = requests.get(missing, auth=ADMIN, allow_redirects=False)
    assert r.status_code == 404

    # A real client follows it: crane (token auth at Berth, then the bucket).
    crane = PEERS / "crane"
    assert crane.is_file(), f"{crane} missing: run tests/peers/build-go-peers.sh"
    (tmp_path / "docker").mkdir()
    auth = base64.b64encode(":".join(ADMIN).encode()).decode()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps({"auths": {server.addr: {"auth": auth}}})
    )
    result = subprocess.run(
        [crane, "blob", "--insecure", f"{server.addr}/s3/redirect@{sha256(layer)}"],
        env={**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == layer


def test_garbage_collection_deletes_in_batches_of_a_thousand(minio):
    """1,500 blobs go in two DeleteObjects requests, never one request each."""
    from concurrent.futures import ThreadPoolExecutor

    store = s3_store()
    client = store._client()
    digests = [sha256(f"orphan {n}".encode()) for n in range(1500)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda d: client.put_object(
                    Bucket=store.bucket_name, Key=store._blob_key(d), Body=b"x"
                ),
                digests,
            )
        )
    calls: list[str] = []
    client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    store.delete_blobs(digests)
    assert calls == ["DeleteObjects", "DeleteObjects"]
    assert keys(store, "blobs/") == []
