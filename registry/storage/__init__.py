"""Content-addressed blob storage. See docs/storage.md for the layout."""

from __future__ import annotations

from django.core.files.storage import storages

from registry.storage.base import BlobStore, UploadBusy


def blob_store() -> BlobStore:
    """The configured store (``STORAGES["blobs"]``), built once per process by Django."""
    return storages["blobs"]  # type: ignore[return-value]


__all__ = ["BlobStore", "UploadBusy", "blob_store"]
