"""The contract every blob store keeps (one shared test suite checks it:
tests/registry/test_storage_contract.py).

- Upload bytes live under an upload id until ``commit_upload`` makes them the
  blob with a given digest; the caller has verified the digest first.
- ``commit_upload`` is atomic and durable: afterwards the blob is complete on
  stable storage; before it, nothing is visible under the blob's digest.
- ``upload_writer(upload_id)`` holds the upload exclusively (``UploadBusy`` when
  another writer has it); inside, the caller reads the accepted size from the
  database and calls ``begin(size)``, which discards anything past it (bytes of a
  request that failed or a process that crashed) and refuses a size the stored
  bytes do not reach. If the block raises, the upload is cut back to that size:
  a failed request adds nothing. ``flush()`` returns when every byte written so
  far is stored (a store may buffer writes); the caller flushes before it
  records the new size, and leaving the block without an error flushes too.
- Blobs are opened for reading as seekable binary files, never loaded whole.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol


class UploadBusy(Exception):
    """Another request is writing to this upload right now."""


class UploadWriter(Protocol):
    def begin(self, offset: int) -> None: ...

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...


class BlobStore(Protocol):
    def start_upload(self, upload_id: str) -> None: ...

    def upload_writer(self, upload_id: str) -> AbstractContextManager[UploadWriter]: ...

    def read_upload(self, upload_id: str, size: int) -> Iterator[bytes]: ...

    def commit_upload(self, upload_id: str, digest: str, size: int) -> None: ...

    def delete_upload(self, upload_id: str) -> None: ...

    def upload_ids(self) -> Iterator[str]: ...

    def abort_stale_transfers(self, older_than: datetime.timedelta) -> int:
        """Release what a crashed commit left inside the backend itself (S3's
        unfinished multipart uploads, invisible but billed); how many."""
        ...

    def blob_exists(self, digest: str) -> bool: ...

    def blob_size(self, digest: str) -> int: ...

    def open_blob(self, digest: str) -> BinaryIO: ...

    def delete_blob(self, digest: str) -> None: ...

    def delete_blobs(self, digests: list[str]) -> None:
        """Delete many blobs (absent ones are no error): in as few requests as
        the backend allows (S3: DeleteObjects, 1,000 keys a request)."""
        ...

    def blob_digests(self) -> Iterator[str]: ...
