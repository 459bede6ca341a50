"""Blob storage on S3 or an S3-compatible server (MinIO, Ceph RGW, ...).

Selected by ``BERTH_STORAGE_URL=s3://bucket/prefix?endpoint=...`` (portal/settings.py,
docs/scale-out.md). Built on django-storages' ``S3Storage`` for its boto3 session,
client configuration and credentials (boto3's default chain: ``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role; never in settings). The
byte paths are our own: ``S3Storage.open()`` reads whole objects into memory.

Layout under ``<prefix>/``::

    blobs/<algorithm>/<first two hex>/<hex>           committed, verified blobs
    uploads/<upload id>/parts/<offset:020d>-<token>   bytes of an upload in progress
    uploads/<upload id>/lock                          the lease of its current writer

**Uploads are part objects.** S3 objects cannot be appended to, and an upload grows
by requests of any size that may land on different replicas. A writer buffers at
most ``part_size`` bytes (default 8 MiB, at least S3's 5 MiB part minimum) and
stores each full buffer, and the rest at the end of the request, as one part object
named by the upload offset where it starts and a random token of the writing
request. One S3 multipart upload per session was rejected: its parts must be 5 MiB
or more except the last, but clients send chunks of any size, and a part cannot be
grown by the next request. The upload's bytes are the chain of parts from offset 0,
each one counting up to where the next one starts (a part that also holds bytes of a
crashed request past the accepted size is cut there by the next request's part); the
accepted size from the database says where the chain ends. ``begin(offset)``
deletes the parts that start at or after ``offset`` and refuses an offset the chain
does not reach; a writer whose block raises deletes the parts it wrote.

**Exclusivity is a lease object with conditional writes** (S3 has no locks):
``PutObject`` of ``lock`` with ``If-None-Match: *`` takes it, and a taken lease makes
the second writer raise ``UploadBusy``, unless the lease is older than ``lock_ttl``
by the server's clock (its holder died): then it is taken over with ``If-Match`` on
the stale ETag, so of two takers only one wins. While a writer is open a heartbeat
thread rewrites the lease every ``lock_ttl / 4`` with ``If-Match`` on its own ETag; a
writer whose lease was lost raises ``UploadBusy`` before storing another part. The
random token in part names keeps even that case safe: a writer only ever deletes
parts it wrote itself. The lease is deleted at the end, after a HEAD shows it is
still ours (and with ``If-Match``, which AWS honours and MinIO ignores).

All threads share one boto3 client (clients are thread-safe; django-storages keeps
a session and resource per thread, about 12 MB each).

**A commit assembles the blob with one multipart upload**: ``UploadPartCopy``
(server-side, no bytes through Berth) for each run of 5 MiB or more inside a part,
and only the small parts (a client's small chunks) are read back and gathered into
``part_size`` buffers. S3 completes a multipart upload atomically, so the blob key
never shows partial content. A blob of at most ``part_size`` bytes is one
``CopyObject`` (when a single part holds exactly it) or one ``PutObject``. S3 allows
10,000 parts: with the default part size a blob may hold up to 78 GiB (raise
``part_size`` for more).

**Reads** are ranged GETs of at most ``read_window`` bytes (64 MiB), consumed in the
caller's block size: memory per reader is one block, never the blob.
"""

from __future__ import annotations

import datetime
import errno
import io
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ImproperlyConfigured
from storages.backends.s3 import S3Storage

from registry.storage.base import UploadBusy

log = logging.getLogger("berth.storage")

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part (except the last one of an upload)
MAX_COPY_PART = 5 * 1024 * MiB  # UploadPartCopy copies at most 5 GiB per part
MAX_PARTS = 10_000
READ_BLOCK = MiB
DELETE_BATCH = 1000


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _missing(exc: ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NoSuchBucket", "NotFound")


def _conflict(exc: ClientError) -> bool:
    """A conditional write lost: 412, or 409 when two raced on AWS."""
    return _status(exc) in (409, 412) or _code(exc) in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
    )


@dataclass(frozen=True)
class _Part:
    key: str
    start: int  # upload offset of its first byte
    size: int  # bytes in the object
    written: Any  # LastModified: of two parts at one offset, the later counts


@dataclass(frozen=True)
class _Piece:
    part: _Part
    offset: int  # first byte inside the part object
    length: int


def _chain(parts: list[_Part]) -> tuple[list[tuple[_Part, int]], int]:
    """The parts that hold an upload's bytes, each with how many of its bytes count
    (up to where the next one starts), and how far from offset 0 they reach."""
    chain: list[tuple[_Part, int]] = []
    reach = 0
    for i, part in enumerate(parts):
        if i + 1 < len(parts) and parts[i + 1].start == part.start:
            continue  # written twice at one offset (a lost lease): the later counts
        if part.start > reach:
            break  # a gap: nothing after it is part of the upload
        if chain:
            last, _ = chain[-1]
            chain[-1] = (last, part.start - last.start)
        chain.append((part, part.size))
        reach = part.start + part.size
    return chain, reach


class _Lease:
    """``uploads/<id>/lock``: who may write to an upload right now."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self.store = store
        self.key = key
        self.token = secrets.token_hex(8)
        self.etag: str | None = None
        self.lost = False
        self._seq = 0
        self._mutex = threading.Lock()
        self._released = False

    def _put(self, **condition: str) -> None:
        self._seq += 1  # every write has new content, so a new ETag
        body = f"{self.token} {self._seq} {time.time():.3f}\n".encode()
        response = self.store._client().put_object(
            Bucket=self.store.bucket_name, Key=self.key, Body=body, **condition
        )
        self.etag = response["ETag"]

    def acquire(self, upload_id: str) -> None:
        client = self.store._client()
        for _ in range(2):
            try:
                self._put(IfNoneMatch="*")
                return
            except ClientError as exc:
                if not _conflict(exc):
                    raise
            try:
                head = client.head_object(Bucket=self.store.bucket_name, Key=self.key)
            except ClientError as exc:
                if _missing(exc):
                    continue  # released in between: try again
                raise
            now = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
            age = (now - head["LastModified"]).total_seconds()
            if age < self.store.lock_ttl:
                raise UploadBusy(upload_id)
            # Its holder stopped renewing it (a crash): take it over, atomically.
            try:
                self._put(IfMatch=head["ETag"])
            except ClientError as exc:
                if _conflict(exc) or _missing(exc):
                    raise UploadBusy(upload_id) from None
                raise
            log.warning("upload %s: took over a lease unrenewed for %.0f s", upload_id, age)
            return
        raise UploadBusy(upload_id)

    def renew(self) -> None:
        with self._mutex:
            if self._released or self.lost:
                return
            try:
                self._put(IfMatch=self.etag or "")
            except ClientError as exc:
                if _conflict(exc) or _missing(exc):
                    self.lost = True
                    log.warning("upload lease %s was taken over", self.key)
                else:
                    log.warning("upload lease %s: renewal failed: %s", self.key, exc)
            except BotoCoreError as exc:
                log.warning("upload lease %s: renewal failed: %s", self.key, exc)

    def release(self) -> None:
        with self._mutex:
            self._released = True
            if self.lost:
                return
        client = self.store._client()
        bucket = self.store.bucket_name
        try:
            head = client.head_object(Bucket=bucket, Key=self.key)
            if head["ETag"] == self.etag:
                client.delete_object(Bucket=bucket, Key=self.key, IfMatch=self.etag)
        except (ClientError, BotoCoreError) as exc:
            # Gone already (a commit or cancel removed the upload), or unreachable:
            # an unrenewed lease expires after lock_ttl.
            if not (isinstance(exc, ClientError) and (_missing(exc) or _conflict(exc))):
                log.warning("upload lease %s: release failed: %s", self.key, exc)


class _S3Writer:
    def __init__(self, store: S3BlobStore, upload_id: str, lease: _Lease) -> None:
        self._store = store
        self._upload_id = upload_id
        self._lease = lease
        self._token = secrets.token_hex(6)
        self._offset: int | None = None
        self._pos = 0  # upload offset of the first buffered byte
        self._buf = io.BytesIO()
        self._written: list[str] = []
        self.thread = threading.get_ident()

    def begin(self, offset: int) -> None:
        parts = self._store._parts(self._upload_id)
        _, reach = _chain([p for p in parts if p.start < offset])
        if reach < offset:
            raise OSError(errno.EIO, f"upload holds {reach} bytes, {offset} were accepted")
        self._store._delete_keys([p.key for p in parts if p.start >= offset])
        self._offset = self._pos = offset
        self._buf = io.BytesIO()

    def write(self, data: bytes) -> None:
        if self._offset is None:
            raise RuntimeError("begin(offset) before write")
        view = memoryview(data)
        part_size = self._store.part_size
        while view:
            room = part_size - self._buf.tell()
            self._buf.write(view[:room])
            view = view[room:]
            if self._buf.tell() >= part_size:
                self.flush()

    def flush(self) -> None:
        """Store the buffered bytes as a part object (a no-op when there are none)."""
        length = self._buf.tell()
        if not length:
            return
        if self._lease.lost:
            raise UploadBusy(self._upload_id)
        key = f"{self._store._upload_prefix(self._upload_id)}parts/{self._pos:020d}-{self._token}"
        self._written.append(key)  # before the PUT: a lost answer may hide a stored part
        self._buf.seek(0)
        self._store._client().put_object(
            Bucket=self._store.bucket_name, Key=key, Body=self._buf, ContentLength=length
        )
        self._pos += length
        self._buf = io.BytesIO()

    def rollback(self) -> None:
        self._buf = io.BytesIO()
        try:
            self._store._delete_keys(self._written)
        except (ClientError, BotoCoreError, OSError) as exc:
            # The next begin() deletes them: they start past the accepted size.
            log.warning("upload %s: rollback left parts behind: %s", self._upload_id, exc)


class _S3BlobReader(io.RawIOBase):
    """A blob opened for reading: seekable, read with ranged GETs of at most
    ``window`` bytes, each streamed in the caller's block size."""

    def __init__(self, store: S3BlobStore, key: str, size: int) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self.size = size
        self._pos = 0
        self._body: Any = None
        self._body_end = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        if pos != self._pos:
            self._drop()
            self._pos = pos
        return pos

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _open(self) -> None:
        self._drop()
        end = min(self._pos + self._store.read_window, self.size)
        try:
            response = self._store._client().get_object(
                Bucket=self._store.bucket_name, Key=self._key, Range=f"bytes={self._pos}-{end - 1}"
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(errno.ENOENT, "blob is gone", self._key) from None
            raise
        self._body = response["Body"]
        self._body_end = end

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        left = self.size - self._pos
        size = left if size is None or size < 0 else min(size, left)
        chunks: list[bytes] = []
        got = 0
        retried = False
        while got < size:
            if self._body is None or self._pos >= self._body_end:
                self._open()
            try:
                data = self._body.read(min(size - got, self._body_end - self._pos))
            except (BotoCoreError, OSError):
                if retried:
                    raise
                retried = True  # a dropped connection: once more from here
                self._drop()
                continue
            if not data:
                raise OSError(errno.EIO, f"{self._key} ended at {self._pos} of {self.size}")
            chunks.append(data)
            got += len(data)
            self._pos += len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()


class S3BlobStore(S3Storage):
    """The blob store contract (registry/storage/base.py) on an S3 bucket."""

    def get_default_settings(self) -> dict[str, Any]:
        return {
            **super().get_default_settings(),
            "signature_version": "s3v4",  # also for presigned URLs (botocore's default is v2)
            "create_bucket": True,
            "part_size": 8 * MiB,
            "lock_ttl": 60.0,
            "read_window": 64 * MiB,
            "max_connections": 64,  # the shared client's pool (botocore's default: 10)
        }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.part_size: int = int(self.part_size)
        self.lock_ttl: float = float(self.lock_ttl)
        self.read_window: int = int(self.read_window)
        self.max_connections: int = int(self.max_connections)
        if not self.bucket_name:
            raise ImproperlyConfigured("S3 blob storage needs a bucket name")
        if self.part_size < MIN_PART:
            raise ImproperlyConfigured(f"part_size must be at least {MIN_PART} (S3's minimum)")
        if self.read_window < 1 or self.lock_ttl <= 0:
            raise ImproperlyConfigured("read_window and lock_ttl must be positive")
        location = (self.location or "").strip("/")
        self._root = f"{location}/" if location else ""
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._shared_client: Any = None
        self._bucket_ready = False
        self._ready_lock = threading.RLock()
        self._writers: dict[str, _S3Writer] = {}
        self._leases: set[_Lease] = set()
        self._leases_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        runtime = ("_shared_client", "_ready_lock", "_writers", "_leases", "_leases_lock")
        for name in (*runtime, "_heartbeat"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._init_runtime()

    # plumbing ----------------------------------------------------------------

    def _client(self) -> Any:
        """The process's boto3 client, shared by all threads (boto3 clients are
        thread-safe; django-storages' per-thread session and resource cost about
        12 MB each); the bucket is checked (and created unless told not to) on
        first use."""
        client = self._shared_client
        if client is None:
            with self._ready_lock:
                if self._shared_client is None:
                    config = self.client_config.merge(
                        Config(max_pool_connections=self.max_connections)
                    )
                    self._shared_client = self._create_session().client(
                        "s3",
                        region_name=self.region_name,
                        use_ssl=self.use_ssl,
                        endpoint_url=self.endpoint_url,
                        config=config,
                        verify=self.verify,
                    )
                client = self._shared_client
        if not self._bucket_ready:
            self._ensure_bucket(client)
        return client

    def _ensure_bucket(self, client: Any) -> None:
        with self._ready_lock:
            if self._bucket_ready:
                return
            try:
                client.head_bucket(Bucket=self.bucket_name)
            except ClientError as exc:
                if not _missing(exc):
                    raise
                if not self.create_bucket:
                    raise ImproperlyConfigured(
                        f"bucket {self.bucket_name!r} does not exist (create_bucket=false)"
                    ) from None
                kwargs: dict[str, Any] = {}
                if self.region_name and self.region_name != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
                try:
                    client.create_bucket(Bucket=self.bucket_name, **kwargs)
                    log.info("created bucket %s", self.bucket_name)
                except ClientError as exc2:
                    if _code(exc2) != "BucketAlreadyOwnedByYou":
                        raise
            self._check_conditional_writes(client)
            self._bucket_ready = True

    def _check_conditional_writes(self, client: Any) -> None:
        """Upload leases rely on conditional writes (``If-None-Match: *``, ``If-Match``);
        a server that ignores them would let two replicas write one upload at once.
        Probe once per process: the second create-if-absent of a key must fail."""
        key = self._key(f"_berth/probe-{secrets.token_hex(8)}")
        try:
            client.put_object(Bucket=self.bucket_name, Key=key, Body=b"1", IfNoneMatch="*")
            try:
                client.put_object(Bucket=self.bucket_name, Key=key, Body=b"2", IfNoneMatch="*")
            except ClientError as exc:
                if _conflict(exc):
                    return
                raise
        except ClientError as exc:
            if _status(exc) not in (400, 501) and _code(exc) != "NotImplemented":
                raise
        finally:
            with suppress(ClientError):
                client.delete_object(Bucket=self.bucket_name, Key=key)
        raise ImproperlyConfigured(
            f"the S3 server behind bucket {self.bucket_name!r} does not honour conditional "
            "writes (If-None-Match/If-Match), which Berth's upload locks need: use a server "
            "that supports them (AWS S3, MinIO, Ceph RGW 18+, ...)"
        )

    def _key(self, name: str) -> str:
        return self._root + name

    def _blob_key(self, digest: str) -> str:
        algorithm, hexpart = digest.split(":", 1)
        return self._key(f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}")

    def _upload_prefix(self, upload_id: str) -> str:
        if not upload_id or "/" in upload_id:
            raise ValueError(f"bad upload id {upload_id!r}")
        return self._key(f"uploads/{upload_id}/")

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket_name, Prefix=prefix):
            yield from page.get("Contents", ())

    def _delete_keys(self, keys: list[str]) -> None:
        client = self._client()
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i : i + DELETE_BATCH]
            response = client.delete_objects(
                Bucket=self.bucket_name,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = [e for e in response.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise OSError(errno.EIO, f"could not delete {len(errors)} objects: {errors[0]}")

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._client().head_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _get_range(self, key: str, offset: int, length: int) -> Iterator[bytes]:
        """``length`` bytes of an object from ``offset``, in blocks of READ_BLOCK."""
        if length <= 0:
            return
        response = self._client().get_object(
            Bucket=self.bucket_name, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
        )
        body = response["Body"]
        try:
            remaining = length
            while remaining > 0:
                data = body.read(min(READ_BLOCK, remaining))
                if not data:
                    raise OSError(errno.EIO, f"{key} is shorter than {offset + length}")
                remaining -= len(data)
                yield data
        finally:
            body.close()

    # uploads -----------------------------------------------------------------

    def _parts(self, upload_id: str) -> list[_Part]:
        prefix = self._upload_prefix(upload_id) + "parts/"
        parts = []
        for item in self._list(prefix):
            start, _, _token = item["Key"][len(prefix) :].partition("-")
            if start.isdigit():
                parts.append(_Part(item["Key"], int(start), item["Size"], item["LastModified"]))
        parts.sort(key=lambda p: (p.start, p.written, p.key))
        return parts

    def _pieces(self, upload_id: str, size: int, parts: list[_Part] | None = None) -> list[_Piece]:
        """Where the first ``size`` bytes of an upload are."""
        chain, reach = _chain(self._parts(upload_id) if parts is None else parts)
        if reach < size:
            raise OSError(errno.EIO, f"upload {upload_id} holds {reach} bytes, not {size}")
        pieces = []
        for part, length in chain:
            if part.start >= size:
                break
            length = min(length, size - part.start)
            if length > 0:
                pieces.append(_Piece(part, 0, length))
        return pieces

    def _flush_own_writer(self, upload_id: str) -> None:
        """Inside this thread's writer, the buffered bytes are part of the upload."""
        writer = self._writers.get(upload_id)
        if writer is not None and writer.thread == threading.get_ident():
            writer.flush()

    def start_upload(self, upload_id: str) -> None:
        """Nothing to create: S3 has no empty directories, and parts appear with bytes."""
        self._upload_prefix(upload_id)

    @contextmanager
    def upload_writer(self, upload_id: str) -> Iterator[_S3Writer]:
        lease = _Lease(self, self._upload_prefix(upload_id) + "lock")
        lease.acquire(upload_id)
        writer = _S3Writer(self, upload_id, lease)
        self._writers[upload_id] = writer
        self._watch(lease)
        try:
            try:
                yield writer
                writer.flush()
            except BaseException:
                writer.rollback()
                raise
        finally:
            if self._writers.get(upload_id) is writer:
                del self._writers[upload_id]
            self._unwatch(lease)
            lease.release()

    def _watch(self, lease: _Lease) -> None:
        with self._leases_lock:
            self._leases.add(lease)
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._beat, name="berth-s3-lease", daemon=True
                )
                self._heartbeat.start()

    def _unwatch(self, lease: _Lease) -> None:
        with self._leases_lock:
            self._leases.discard(lease)

    def _beat(self) -> None:
        """Renew the leases of this process's open writers until there are none."""
        while True:
            time.sleep(self.lock_ttl / 4)
            with self._leases_lock:
                leases = list(self._leases)
                if not leases:
                    self._heartbeat = None
                    return
            for lease in leases:
                lease.renew()

    def read_upload(self, upload_id: str, size: int) -> Iterator[bytes]:
        self._flush_own_writer(upload_id)
        for piece in self._pieces(upload_id, size):
            yield from self._get_range(piece.part.key, piece.offset, piece.length)

    def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        self._flush_own_writer(upload_id)
        parts = self._parts(upload_id)
        key = self._blob_key(digest)
        if self._head(key) is None:
            self._assemble(key, self._pieces(upload_id, size, parts), size)
        self._delete_keys([p.key for p in parts])

    def _assemble(self, key: str, pieces: list[_Piece], size: int) -> None:
        client = self._client()
        bucket = self.bucket_name
        if size <= self.part_size:
            if len(pieces) == 1 and pieces[0].length == pieces[0].part.size:
                source = {"Bucket": bucket, "Key": pieces[0].part.key}
                client.copy_object(
                    Bucket=bucket,
                    Key=key,
                    CopySource=source,
                    ContentType="application/octet-stream",
                    MetadataDirective="REPLACE",
                )
                return
            buf = io.BytesIO()
            for piece in pieces:
                for data in self._get_range(piece.part.key, piece.offset, piece.length):
                    buf.write(data)
            buf.seek(0)
            client.put_object(
                Bucket=bucket, Key=key, Body=buf, ContentType="application/octet-stream"
            )
            return
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType="application/octet-stream"
        )["UploadId"]
        try:
            done = self._upload_parts(client, key, upload_id, pieces)
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except (ClientError, BotoCoreError) as exc:
                log.warning("could not abort multipart upload of %s: %s", key, exc)
            raise

    def _upload_parts(
        self, client: Any, key: str, upload_id: str, pieces: list[_Piece]
    ) -> list[dict[str, Any]]:
        """The parts of a multipart upload: server-side copies of runs of at least
        MIN_PART bytes; everything else gathered into buffers of ``part_size``."""
        bucket = self.bucket_name
        done: list[dict[str, Any]] = []
        pending = io.BytesIO()

        def number() -> int:
            if len(done) >= MAX_PARTS:
                raise OSError(errno.EFBIG, f"more than {MAX_PARTS} parts: raise part_size")
            return len(done) + 1

        def send_pending() -> None:
            nonlocal pending
            n = number()
            length = pending.tell()
            pending.seek(0)
            response = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=n,
                Body=pending,
                ContentLength=length,
            )
            done.append(_completed(n, response))
            pending = io.BytesIO()

        for piece in pieces:
            pos = piece.offset
            end = piece.offset + piece.length
            while pos < end:
                rest = end - pos
                if pending.tell() == 0 and rest >= MIN_PART:
                    length = rest if rest <= MAX_COPY_PART else min(MAX_COPY_PART, rest - MIN_PART)
                    n = number()
                    response = client.upload_part_copy(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource={"Bucket": bucket, "Key": piece.part.key},
                        CopySourceRange=f"bytes={pos}-{pos + length - 1}",
                    )
                    done.append(_completed(n, response["CopyPartResult"]))
                    pos += length
                    continue
                take = min(rest, self.part_size - pending.tell())
                for data in self._get_range(piece.part.key, pos, take):
                    pending.write(data)
                pos += take
                if pending.tell() >= self.part_size:
                    send_pending()
        if pending.tell():
            send_pending()
        return done

    def delete_upload(self, upload_id: str) -> None:
        self._delete_keys([item["Key"] for item in self._list(self._upload_prefix(upload_id))])

    def upload_ids(self) -> Iterator[str]:
        prefix = self._key("uploads/")
        paginator = self._client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket_name, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                yield common["Prefix"][len(prefix) :].rstrip("/")

    def abort_stale_transfers(self, older_than: datetime.timedelta) -> int:
        """Abort multipart uploads under this store's prefix started more than
        ``older_than`` ago: a commit that died between creating and completing
        one. Live commits take seconds, so an hour-old one is dead."""
        client = self._client()
        cutoff = datetime.datetime.now(datetime.UTC) - older_than
        aborted = 0
        paginator = client.get_paginator("list_multipart_uploads")
        # No Prefix: MinIO lists only uploads of exactly the key given as prefix.
        for page in paginator.paginate(Bucket=self.bucket_name):
            for item in page.get("Uploads", ()):
                if not item["Key"].startswith(self._root) or item["Initiated"] >= cutoff:
                    continue
                try:
                    client.abort_multipart_upload(
                        Bucket=self.bucket_name, Key=item["Key"], UploadId=item["UploadId"]
                    )
                    aborted += 1
                except ClientError as exc:
                    if not _missing(exc):  # completed or aborted meanwhile: fine
                        raise
        if aborted:
            log.info("aborted %d unfinished multipart uploads", aborted)
        return aborted

    # blobs -------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        return self._head(self._blob_key(digest)) is not None

    def blob_size(self, digest: str) -> int:
        head = self._head(self._blob_key(digest))
        if head is None:
            raise FileNotFoundError(errno.ENOENT, "no such blob", digest)
        return int(head["ContentLength"])

    def open_blob(self, digest: str) -> _S3BlobReader:
        key = self._blob_key(digest)
        return _S3BlobReader(self, key, self.blob_size(digest))

    def blob_url(self, digest: str, expires: int = 300) -> str:
        """A presigned GET URL of a blob (for redirects that keep bytes off Berth)."""
        return self._client().generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket_name, "Key": self._blob_key(digest)},
            ExpiresIn=expires,
        )

    def delete_blob(self, digest: str) -> None:
        self._client().delete_object(Bucket=self.bucket_name, Key=self._blob_key(digest))

    def delete_blobs(self, digests: list[str]) -> None:
        self._delete_keys([self._blob_key(digest) for digest in digests])

    def blob_digests(self) -> Iterator[str]:
        prefix = self._key("blobs/")
        for item in self._list(prefix):
            algorithm, _, rest = item["Key"][len(prefix) :].partition("/")
            _, _, hexpart = rest.partition("/")
            if algorithm and hexpart and "/" not in hexpart:
                yield f"{algorithm}:{hexpart}"


def _completed(number: int, result: dict[str, Any]) -> dict[str, Any]:
    """A part for CompleteMultipartUpload: its ETag, and its checksum when the
    server computed one (botocore asks for CRC32 checksums by default)."""
    part: dict[str, Any] = {"PartNumber": number, "ETag": result["ETag"]}
    for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1"):
        if result.get(name):
            part[name] = result[name]
    return part
