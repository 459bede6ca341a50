"""Blob upload sessions: start, append, complete, cancel, purge.

Bytes are hashed once as they stream in and written once. The sha256 of the
bytes accepted so far is kept on the session row, so a session can be finished by
any process; the running hash object is kept in-process to continue appends
without re-reading (and rebuilt from the stored bytes after a restart).
"""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from kit.db.group_commit import GroupCommit
from registry.errors import Code, RegistryError
from registry.models import Blob, Upload
from registry.reference import Digest
from registry.services import quotas
from registry.services.blobs import BlobBeingDeleted, blob_register
from registry.storage import UploadBusy, blob_store
from registry.storage.base import BlobStore, UploadWriter

CHUNK = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256().hexdigest()


class _HashCache:
    """Running sha256 objects of recent uploads, keyed by (upload id, size)."""

    def __init__(self, limit: int = 512) -> None:
        self._items: OrderedDict[str, tuple[int, hashlib._Hash]] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def take(self, upload_id: str, size: int) -> hashlib._Hash | None:
        with self._lock:
            item = self._items.pop(upload_id, None)
        if item is None or item[0] != size:
            return None
        return item[1]

    def put(self, upload_id: str, size: int, hasher: hashlib._Hash) -> None:
        with self._lock:
            self._items[upload_id] = (size, hasher)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


_hashes = _HashCache()


def reset() -> None:
    """Forget the running digests of recent uploads (what a new process starts
    with: the next chunk rebuilds its digest from the stored bytes)."""
    with _hashes._lock:
        _hashes._items.clear()


def range_header(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def upload_get(*, repository_name: str, upload_id: str) -> Upload:
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        raise RegistryError(Code.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id[:64]}) from None
    upload = Upload.objects.filter(pk=key, repository_name=repository_name).first()
    if upload is None:
        raise RegistryError(Code.BLOB_UPLOAD_UNKNOWN, detail={"uuid": upload_id[:64]})
    return upload


def upload_start(*, repository_name: str, owner: str) -> Upload:
    limit = settings.BERTH_UPLOADS_PER_CLIENT
    if Upload.objects.filter(owner=owner).count() >= limit:
        raise RegistryError(
            Code.TOOMANYREQUESTS,
            f"too many open uploads (limit {limit}); finish or cancel some",
            headers={"Retry-After": "60"},
        )
    upload = _starts.submit(
        Upload(repository_name=repository_name, owner=owner, sha256=EMPTY_SHA256)
    )
    blob_store().start_upload(str(upload.id))
    return upload


def _insert(uploads: Sequence[Upload]) -> list[Upload | Exception]:
    Upload.objects.bulk_create(uploads)
    return list(uploads)


# New sessions' rows, inserted together when requests start uploads at once: a
# write each, under the database's single writer (kit.db.group_commit).
_starts: GroupCommit[Upload, Upload] = GroupCommit(_insert)


def _hasher(upload: Upload) -> hashlib._Hash:
    hasher = _hashes.take(str(upload.id), upload.size)
    if hasher is not None:
        return hasher
    # Another process, or a restart, holds the running state: rebuild it from the
    # accepted bytes (rare; the normal path never re-reads).
    hasher = hashlib.sha256()
    for data in blob_store().read_upload(str(upload.id), upload.size):
        hasher.update(data)
    if hasher.hexdigest() != upload.sha256:
        raise RegistryError(Code.BLOB_UPLOAD_INVALID, "stored upload is corrupt; start again")
    return hasher


def _copy(stream: BinaryIO, length: int | None, writer: UploadWriter, hasher: hashlib._Hash) -> int:
    """Stream ``length`` bytes (or to EOF when None) from the client into storage.

    A block is hashed and written on helper threads while this one reads the
    next from the client (hashlib and file writes release the GIL), so a push
    is paced by the slowest of the three, not by their sum. Blocks are hashed
    and written in order: the next one is handed over only once the previous
    one is done. A write error surfaces here, before anything is recorded.
    A body of one block or less (configs, small layers) is done on this thread:
    handing it over would only add the hand-over."""
    if length is not None and length <= CHUNK:
        parts = []
        got = 0
        while got < length and (data := stream.read(length - got)):
            parts.append(data)
            got += len(data)
        if got != length:
            raise RegistryError(
                Code.SIZE_INVALID,
                f"request body ended after {got} bytes of the {length} announced",
            )
        body = b"".join(parts)
        hasher.update(body)
        writer.write(body)
        return length
    total = 0
    remaining = length
    hashed: Future[None] | None = None
    written: Future[None] | None = None
    try:
        while remaining is None or remaining > 0:
            data = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                break
            if hashed is not None and written is not None:
                hashed.result()
                written.result()
            hashed = _helpers.submit(hasher.update, data)
            written = _helpers.submit(writer.write, data)
            total += len(data)
            if remaining is not None:
                remaining -= len(data)
    finally:
        # Never leave a helper touching the file or the hash after we return.
        for future in (hashed, written):
            if future is not None:
                wait([future])
    for future in (hashed, written):
        if future is not None:
            future.result()  # raises the helper's error (a full disk, say)
    if remaining:
        raise RegistryError(
            Code.SIZE_INVALID,
            f"request body ended after {total} bytes of the {length} announced",
        )
    return total


# Threads that hash and write upload blocks (two per upload in flight); the
# executor starts them on first use.
_helpers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="berth-upload")


def _check_start(upload: Upload, start: int | None) -> None:
    if start is not None and start != upload.size:
        raise RegistryError(
            Code.RANGE_INVALID,
            f"chunk starts at {start}, upload is at {upload.size}",
            headers={"Range": range_header(upload.size)},
        )


def _append(
    upload: Upload, writer: UploadWriter, stream: BinaryIO, length: int | None, start: int | None
) -> tuple[int, hashlib._Hash]:
    """Append a request body at the session's current end, under the writer lock."""
    _check_start(upload, start)
    hasher = _hasher(upload)
    added = _copy(stream, length, writer, hasher) if length != 0 else 0
    writer.flush()  # stored before the session row says so (S3 buffers a part)
    return upload.size + added, hasher


def _save_progress(upload: Upload, size: int, hasher: hashlib._Hash) -> None:
    upload.size = size
    upload.sha256 = hasher.hexdigest()
    upload.updated_at = timezone.now()
    Upload.objects.filter(pk=upload.pk).update(
        size=size, sha256=upload.sha256, updated_at=upload.updated_at
    )
    _hashes.put(str(upload.id), size, hasher)


def upload_append(
    *, upload: Upload, stream: BinaryIO, length: int | None, start: int | None
) -> Upload:
    """PATCH: append a chunk (``start`` from Content-Range) or a whole stream."""
    store = blob_store()
    try:
        with store.upload_writer(str(upload.id)) as writer:
            upload.refresh_from_db()  # the truth, now that no one else writes
            writer.begin(upload.size)
            size, hasher = _append(upload, writer, stream, length, start)
            _save_progress(upload, size, hasher)
    except UploadBusy:
        raise RegistryError(
            Code.RANGE_INVALID,
            "another request is writing to this upload",
            headers={"Range": range_header(upload.size)},
        ) from None
    return upload


def upload_complete(
    *,
    upload: Upload,
    digest: Digest,
    stream: BinaryIO,
    length: int | None,
    start: int | None,
) -> Blob:
    """PUT: append the last chunk if any, verify the digest, make the blob visible."""
    store = blob_store()
    upload_id = str(upload.id)
    try:
        with store.upload_writer(upload_id) as writer:
            upload.refresh_from_db()
            if length == 0 and _committed_before(store, upload, digest):
                # A commit that stored the blob and died before registering it
                # (process killed, connection lost): its bytes are gone from the
                # session, but the blob is there. Finish what it started.
                size = upload.size
                store.delete_upload(upload_id)
                stored = True
            else:
                writer.begin(upload.size)
                if length == 0 and digest.algorithm == "sha256":
                    # Nothing to add, and the row holds the sha256 of the accepted
                    # bytes: no need for the running hash, which another replica
                    # may hold (rebuilding it would read the whole upload back).
                    _check_start(upload, start)
                    size, actual = upload.size, upload.sha256
                else:
                    size, hasher = _append(upload, writer, stream, length, start)
                    # This request's bytes are committed and the row deleted just
                    # below: recording them as progress first would be one more
                    # write, under the database's single writer that bounds
                    # concurrent pushes, for nothing to read. Should the commit
                    # fail, the row still names the bytes accepted before this
                    # request, and the next append starts from there.
                    upload.size = size
                    actual = _final_digest(upload, digest, hasher)
                if actual != digest.hex:
                    _discard(upload)
                    raise RegistryError(
                        Code.DIGEST_INVALID,
                        "uploaded content does not match the digest",
                        detail={"digest": str(digest)},
                    )
                # The quota first: bytes it refuses are never stored (the
                # charge at registration decides; docs/quotas.md).
                try:
                    quotas.precheck(
                        repository_name=upload.repository_name, digest=str(digest), size=size
                    )
                except RegistryError:
                    _discard(upload)
                    raise
                stored = _store(store, upload_id, str(digest), size)
    except UploadBusy:
        raise RegistryError(
            Code.RANGE_INVALID,
            "another request is writing to this upload",
            headers={"Range": range_header(upload.size)},
        ) from None
    blob = _register(upload, str(digest), size, stored=stored)
    _hashes.drop(upload_id)
    return blob


def _store(store: BlobStore, upload_id: str, digest: str, size: int) -> bool:
    """Make the verified upload the blob ``digest``; False when a live blob of
    that digest is stored already (its bytes are these bytes: nothing to move).

    A blob garbage collection is deleting has its bytes deleted before its
    row: wait until the row is gone, so that these bytes are moved in after
    the collector's delete, never before it (docs/gc.md)."""
    deleting = Blob.objects.filter(digest=digest).values_list("deleting", flat=True).first()
    if deleting:
        _await_sweep(digest)
    elif deleting is False:
        return False
    store.commit_upload(upload_id, digest, size)
    return True


def _await_sweep(digest: str) -> None:
    deadline = time.monotonic() + settings.BERTH_GC_UPLOAD_WAIT
    pause = 0.05
    while Blob.objects.filter(digest=digest, deleting=True).exists():
        if time.monotonic() > deadline:
            raise RegistryError(
                Code.TOOMANYREQUESTS,
                "garbage collection is deleting this blob; retry the upload shortly",
                headers={"Retry-After": "10"},
            )
        time.sleep(pause)  # waiting for another process's commit: nothing to wait on
        pause = min(pause * 2, 1.0)


def _register(upload: Upload, digest: str, size: int, *, stored: bool) -> Blob:
    """Record the blob and link it. If the live blob found before was marked
    deleting in between (collection got its row lock first), this upload's own
    bytes are still in the session: store them once the sweep is done."""
    store = blob_store()
    try:
        blob = blob_register(
            repository_name=upload.repository_name,
            digest=digest,
            size=size,
            upload_id=upload.pk,
            existing=not stored,
        )
    except BlobBeingDeleted:
        if stored:
            raise
        _await_sweep(digest)
        with store.upload_writer(str(upload.id)) as writer:
            writer.begin(size)
            store.commit_upload(str(upload.id), digest, size)
        return _register(upload, digest, size, stored=True)
    except RegistryError as exc:
        # Refused by the quota at the charge (a concurrent push took the room
        # the precheck saw): the session row is gone with the refusal; its
        # bytes, when still in the session, go too.
        if exc.code is Code.DENIED and not stored:
            store.delete_upload(str(upload.id))
            _hashes.drop(str(upload.id))
        raise
    if not stored:
        store.delete_upload(str(upload.id))
    return blob


def _committed_before(store: BlobStore, upload: Upload, digest: Digest) -> bool:
    """The session's accepted bytes hash to ``digest`` (the row says so) and the
    blob of that digest and size is stored: a blob is stored only after its
    bytes were verified, so a commit of these very bytes already happened."""
    return (
        digest.algorithm == "sha256"
        and upload.sha256 == digest.hex
        and store.blob_exists(str(digest))
        and store.blob_size(str(digest)) == upload.size
    )


def _final_digest(upload: Upload, digest: Digest, hasher: hashlib._Hash) -> str:
    if digest.algorithm == "sha256":
        return hasher.hexdigest()
    other = hashlib.new(digest.algorithm)
    for data in blob_store().read_upload(str(upload.id), upload.size):
        other.update(data)
    return other.hexdigest()


def _discard(upload: Upload) -> None:
    Upload.objects.filter(pk=upload.pk).delete()
    blob_store().delete_upload(str(upload.id))
    _hashes.drop(str(upload.id))


def upload_cancel(*, upload: Upload) -> None:
    _discard(upload)


def upload_monolithic(
    *, repository_name: str, owner: str, digest: Digest, stream: BinaryIO, length: int | None
) -> Blob:
    """POST with ?digest=: the whole blob in one request."""
    upload = upload_start(repository_name=repository_name, owner=owner)
    try:
        return upload_complete(upload=upload, digest=digest, stream=stream, length=length, start=0)
    except BaseException:
        _discard(upload)
        raise


def uploads_purge(*, older_than: datetime.timedelta) -> int:
    """Cancel sessions idle for longer than ``older_than``; drop stray upload bytes."""
    store = blob_store()
    cutoff = timezone.now() - older_than
    stale = list(Upload.objects.filter(updated_at__lt=cutoff).values_list("pk", flat=True))
    purged = 0
    for pk in stale:
        # A session that came back to life since the listing keeps its bytes.
        deleted, _ = Upload.objects.filter(pk=pk, updated_at__lt=cutoff).delete()
        if deleted:
            store.delete_upload(str(pk))
            _hashes.drop(str(pk))
            purged += 1
    # Bytes with no session row are left by a crash between deleting the row and
    # the bytes. A session's row is created before its bytes, so listing the bytes
    # first and the rows second never mistakes a new session for a stray.
    on_disk = list(store.upload_ids())
    known = {str(pk) for pk in Upload.objects.values_list("pk", flat=True)}
    for upload_id in on_disk:
        if upload_id not in known:
            store.delete_upload(upload_id)
    store.abort_stale_transfers(older_than)
    return purged
