"""The one small interface every adapter keeps (one contract suite checks them
all: tests/replication/test_adapter_contract.py).

An adapter lists what a registry holds (repositories; artifacts with their
digest, tags and labels) and moves content: manifests whole (they are small),
blobs as streams of chunks the copy engine holds one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol


class NotFound(Exception):
    """The repository, manifest or blob is not there."""


class AdapterError(Exception):
    """The registry refused or failed the operation (a clear message for the task's log)."""


@dataclass(frozen=True)
class Artifact:
    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    media_type: str = ""


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Info:
    """What ``/registries/{id}/info`` tells of the adapter (Harbor's RegistryInfo)."""

    type: str
    description: str
    supported_resource_filters: tuple[str, ...] = ("name", "tag", "label")
    supported_triggers: tuple[str, ...] = ("manual", "scheduled", "event_based")
    supported_copy_by_chunk: bool = True
    lists_repositories: bool = True
    labels: bool = False


@dataclass
class Upload:
    """An open blob upload on the destination: where to send the next chunk."""

    repository: str
    location: str
    offset: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class Adapter(Protocol):
    kind: str
    # Same registry (a mount instead of a copy): the key two adapters compare.
    identity: str

    def info(self) -> Info: ...

    def ping(self) -> None:
        """Raise unless the registry answers and accepts the credentials."""

    def repositories(self, *, named: list[str] | None = None) -> list[str]:
        """Every repository, or (registries without a catalog) those ``named``
        that exist."""

    def artifacts(self, repository: str) -> list[Artifact]:
        """The tagged artifacts of a repository with their digests (and labels)."""

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest names, or None."""

    def manifest_get(self, repository: str, reference: str) -> Manifest: ...

    def manifest_put(self, repository: str, reference: str, manifest: Manifest) -> None: ...

    def manifest_delete(self, repository: str, digest: str) -> None:
        """Delete the manifest (and so its tags); nothing if absent."""

    def referrers(self, repository: str, digest: str) -> list[str]:
        """The digests of the manifests whose subject is ``digest``."""

    def blob_exists(self, repository: str, digest: str) -> bool: ...

    def blob_mount(self, repository: str, digest: str, source: str) -> bool:
        """Link a blob of ``source`` (same registry) into ``repository``; False
        when the registry would rather receive the bytes."""

    def blob_read(
        self, repository: str, digest: str, *, offset: int = 0
    ) -> AbstractContextManager[Iterator[bytes]]:
        """The blob's bytes from ``offset``, streamed."""

    def upload_start(self, repository: str) -> Upload: ...

    def upload_chunk(self, upload: Upload, data: bytes) -> None:
        """Append ``data`` at ``upload.offset`` (and advance it)."""

    def upload_offset(self, upload: Upload) -> int:
        """How many bytes the destination acknowledges (to resume)."""

    def upload_finish(self, upload: Upload, digest: str, data: bytes = b"") -> None:
        """Close the upload with ``data`` as its last bytes (a small blob
        whole: one request); the destination verifies ``digest``."""

    def for_writing(self) -> None:
        """This adapter is a copy's destination (an HTTP adapter then asks one
        token per repository for reads and writes alike)."""
