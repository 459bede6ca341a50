"""Blobs as a repository sees them: linked, readable, mountable, unlinkable."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from registry.errors import Code, RegistryError
from registry.models import Blob, ManifestBlob, RepositoryBlob
from registry.services.deletes import require_deletes_enabled
from registry.services.repositories import repository_ensure


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int


def blob_stat(*, repository_name: str, digest: str) -> BlobInfo:
    """The blob if it is linked into the repository; BLOB_UNKNOWN otherwise."""
    row = (
        RepositoryBlob.objects.filter(repository__name=repository_name, blob__digest=digest)
        .values_list("blob__digest", "blob__size")
        .first()
    )
    if row is None:
        raise RegistryError(Code.BLOB_UNKNOWN, detail={"digest": digest})
    return BlobInfo(digest=row[0], size=row[1])


def blob_register(*, repository_name: str, digest: str, size: int) -> Blob:
    """Record verified, durably stored bytes and link them into the repository.

    Written for the write lock it holds (one writer at a time on SQLite): no
    savepoints (part of the caller's transaction as it is), and a new blob is
    inserted-or-nothing and read back, where ``get_or_create`` would wrap its
    insert in a savepoint of its own. A concurrent upload of the same bytes
    may insert it first; both then link the same row."""
    with transaction.atomic(savepoint=False):
        repo = repository_ensure(name=repository_name)
        blob = Blob.objects.filter(digest=digest).first()
        if blob is None:
            Blob.objects.bulk_create([Blob(digest=digest, size=size)], ignore_conflicts=True)
            blob = Blob.objects.get(digest=digest)
        RepositoryBlob.objects.bulk_create(
            [RepositoryBlob(repository=repo, blob=blob)], ignore_conflicts=True
        )
    return blob


def blob_mount(*, repository_name: str, digest: str, source_names: list[str]) -> BlobInfo | None:
    """Link a blob already linked in one of ``source_names`` (which the caller has
    been checked to read) into the repository. None when no source has it."""
    if not source_names:
        return None
    blob = Blob.objects.filter(
        digest=digest, repository_links__repository__name__in=source_names
    ).first()
    if blob is None:
        return None
    with transaction.atomic():
        repo = repository_ensure(name=repository_name)
        RepositoryBlob.objects.bulk_create(
            [RepositoryBlob(repository=repo, blob=blob)], ignore_conflicts=True
        )
    return BlobInfo(digest=blob.digest, size=blob.size)


def blob_unlink(*, repository_name: str, digest: str) -> None:
    """Remove a blob from a repository (its bytes stay until garbage collection).

    Refused while a manifest of the repository references it: every manifest's
    references must keep existing.
    """
    require_deletes_enabled()
    with transaction.atomic():
        link = (
            RepositoryBlob.objects.select_related("blob")
            .filter(repository__name=repository_name, blob__digest=digest)
            .first()
        )
        if link is None:
            raise RegistryError(Code.BLOB_UNKNOWN, detail={"digest": digest})
        if ManifestBlob.objects.filter(
            blob=link.blob, manifest__repository_id=link.repository_id
        ).exists():
            raise RegistryError(
                Code.IN_USE,
                "blob is referenced by a manifest in this repository; delete the manifest first",
                detail={"digest": digest},
            )
        link.delete()


def blob_sources(*, digest: str, exclude: str, limit: int = 50) -> list[str]:
    """Repositories holding ``digest``: candidates for a mount without ``from``."""
    return list(
        RepositoryBlob.objects.filter(blob__digest=digest)
        .exclude(repository__name=exclude)
        .order_by("repository__name")
        .values_list("repository__name", flat=True)[:limit]
    )
