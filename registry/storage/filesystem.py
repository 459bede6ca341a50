"""Blob storage on a local (or shared POSIX) filesystem.

Layout under ``location``::

    blobs/<algorithm>/<first two hex>/<hex>   committed, verified blobs
    uploads/<upload id>                       bytes of an upload in progress

A commit is fsync(file) → rename into place → fsync(directory): the blob path
never shows a partial file, and a committed blob survives a crash.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from typing import BinaryIO

from django.core.files.storage import FileSystemStorage

from registry.storage.base import UploadBusy

READ_BLOCK = 1024 * 1024


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Bytes written to an upload before the disk is asked to catch up. Without it the
# kernel writes a large upload back only when the commit's fsync asks, and the
# client waits for the whole file to reach the disk (about 1 s per GiB here).
# The sync runs on a helper thread, at most one per upload at a time, so the
# disk works while the rest of the upload arrives and the writes never wait.
SYNC_EVERY = 32 * 1024 * 1024
_syncer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="berth-sync")


class _FileWriter:
    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._offset: int | None = None
        self._unsynced = 0
        self._sync: Future[None] | None = None

    def begin(self, offset: int) -> None:
        size = os.fstat(self._fh.fileno()).st_size
        if size < offset:
            raise OSError(errno.EIO, f"upload holds {size} bytes, {offset} were accepted")
        self._fh.truncate(offset)
        self._fh.seek(offset)
        self._offset = offset

    def write(self, data: bytes) -> None:
        if self._offset is None:
            raise RuntimeError("begin(offset) before write")
        self._fh.write(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY and (self._sync is None or self._sync.done()):
            if self._sync is not None:
                self._sync.result()  # a failed sync (EIO) fails the upload now
            self._sync = _syncer.submit(os.fdatasync, self._fh.fileno())
            self._unsynced = 0

    def settle(self, *, check: bool = True) -> None:
        """Wait for the helper's sync (before the file is truncated or closed).
        Its error is raised here: the kernel reports a write-back error to one
        sync only, so the commit's own fsync would not see it again."""
        sync, self._sync = self._sync, None
        if sync is not None:
            wait([sync])
            if check:
                sync.result()

    def flush(self) -> None:
        """Unbuffered: every write is already in the file; only the helper's
        sync may still be running, and its error belongs to this upload."""
        self.settle()

    def rollback(self) -> None:
        self.settle(check=False)
        if self._offset is not None:
            self._fh.truncate(self._offset)


class FileSystemBlobStore(FileSystemStorage):
    def _blob_path(self, digest: str) -> str:
        return self.path(os.path.join("blobs", self.blob_relative_path(digest)))

    def blob_relative_path(self, digest: str) -> str:
        """Where a blob lies under ``<location>/blobs/`` (what a front server
        serving the files itself appends to its internal location)."""
        algorithm, hexpart = digest.split(":", 1)
        return f"{algorithm}/{hexpart[:2]}/{hexpart}"

    def _upload_path(self, upload_id: str) -> str:
        return self.path(os.path.join("uploads", upload_id))

    # uploads -----------------------------------------------------------------

    def start_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb"):
            pass

    @contextmanager
    def upload_writer(self, upload_id: str) -> Iterator[_FileWriter]:
        path = self._upload_path(upload_id)
        try:
            fh = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            # The row outlived its bytes (a crash between the two): begin() refuses
            # any offset beyond what is really there.
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fh = open(path, "w+b", buffering=0)  # noqa: SIM115
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise UploadBusy(upload_id) from exc
            writer = _FileWriter(fh)
            try:
                yield writer
            except BaseException:
                writer.rollback()
                raise
            finally:
                writer.settle(check=False)  # no helper may touch a closed file
        finally:
            fh.close()

    def read_upload(self, upload_id: str, size: int) -> Iterator[bytes]:
        with open(self._upload_path(upload_id), "rb") as fh:
            remaining = size
            while remaining > 0:
                data = fh.read(min(READ_BLOCK, remaining))
                if not data:
                    raise OSError(errno.EIO, f"upload {upload_id} is shorter than {size}")
                remaining -= len(data)
                yield data

    def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        src = self._upload_path(upload_id)
        dst = self._blob_path(digest)
        with open(src, "r+b") as fh:
            fh.truncate(size)
            os.fsync(fh.fileno())
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def delete_upload(self, upload_id: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._upload_path(upload_id))

    def upload_ids(self) -> Iterator[str]:
        try:
            yield from os.listdir(self.path("uploads"))
        except FileNotFoundError:
            return

    def abort_stale_transfers(self, older_than: datetime.timedelta) -> int:
        return 0  # a commit is one rename: nothing is left half-done in the backend

    # blobs -------------------------------------------------------------------

    def blob_exists(self, digest: str) -> bool:
        return os.path.isfile(self._blob_path(digest))

    def blob_size(self, digest: str) -> int:
        return os.stat(self._blob_path(digest)).st_size

    def open_blob(self, digest: str) -> BinaryIO:
        return open(self._blob_path(digest), "rb")

    def delete_blob(self, digest: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._blob_path(digest))

    def delete_blobs(self, digests: list[str]) -> None:
        for digest in digests:
            self.delete_blob(digest)

    def blob_digests(self) -> Iterator[str]:
        root = self.path("blobs")
        if not os.path.isdir(root):
            return
        for algorithm in sorted(os.listdir(root)):
            for prefix in sorted(os.listdir(os.path.join(root, algorithm))):
                for name in sorted(os.listdir(os.path.join(root, algorithm, prefix))):
                    yield f"{algorithm}:{name}"
