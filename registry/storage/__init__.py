"""Content-addressed blob storage. See docs/storage.md for the layout."""

from __future__ import annotations

from django.core.files.storage import storages

from registry.storage.base import BlobStore, UploadBusy


def blob_store() -> BlobStore:
    """The configured store (``STORAGES["blobs"]``), built once per process by Django."""
    return storages["blobs"]  # type: ignore[return-value]


PROBE_DIGEST = "sha256:" + "0" * 64


def readiness_check() -> None:
    """Readiness (kit.health, ``BERTH_READINESS_CHECKS``): the blob store answers,
    and on the filesystem its directory is creatable and writable."""
    import os

    from django.core.files.storage import FileSystemStorage

    store = blob_store()
    store.blob_exists(PROBE_DIGEST)
    if isinstance(store, FileSystemStorage):
        # Created by the first push otherwise; it must be creatable and writable.
        os.makedirs(store.location, exist_ok=True)
        if not os.access(store.location, os.W_OK):
            raise PermissionError("blob directory not writable")


def capacity() -> tuple[int, int] | None:
    """(total, free) bytes of the disk that holds the blobs (Harbor's
    ``/systeminfo/volumes``); None for object storage, which has no such size."""
    import shutil
    from pathlib import Path

    from django.core.files.storage import FileSystemStorage

    store = blob_store()
    if not isinstance(store, FileSystemStorage):
        return None
    # The blob directory appears with the first push: measure what holds it.
    path = Path(store.location).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    return usage.total, usage.free


__all__ = ["BlobStore", "UploadBusy", "blob_store", "capacity", "readiness_check"]
