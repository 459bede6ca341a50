"""Blobs as a repository sees them: linked, readable, mountable, unlinkable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from kit.db.group_commit import GroupCommit
from registry.errors import Code, RegistryError
from registry.models import Blob, ManifestBlob, Repository, RepositoryBlob, Upload
from registry.services import quotas
from registry.services.deletes import require_deletes_enabled
from registry.services.repositories import repositories_ensure, repository_ensure


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


@dataclass(frozen=True, slots=True)
class Registration:
    """Verified, durably stored bytes to record, and the upload session that
    brought them (its row goes in the same transaction)."""

    repository_name: str
    digest: str
    size: int
    upload_id: uuid.UUID | None = None


def blob_register(
    *, repository_name: str, digest: str, size: int, upload_id: uuid.UUID | None = None
) -> Blob:
    """Record verified, durably stored bytes and link them into the repository;
    delete the upload session that brought them, if named.

    Concurrent registrations share one transaction (``kit.db.group_commit``):
    under concurrent pushes they are most of the writes that queue for SQLite's
    one writer. A concurrent upload of the same bytes may insert the blob first;
    both then link the same row."""
    return _registrations.submit(Registration(repository_name, digest, size, upload_id))


def _register(items: Sequence[Registration]) -> list[Blob | Exception]:
    """The registrations of a batch: blobs inserted-or-nothing and read back,
    links inserted-or-nothing, sessions deleted; rows in sorted order. An item
    whose repository cannot exist gets its error and changes nothing."""
    repos = repositories_ensure(item.repository_name for item in items)
    errors: dict[int, Exception] = {
        n: found
        for n, item in enumerate(items)
        if not isinstance(found := repos[item.repository_name], Repository)
    }
    # The project is charged before anything is linked: a refused item links
    # nothing (its stored bytes have no row and are garbage collection's).
    placed = [(n, item) for n, item in enumerate(items) if n not in errors]
    refusals = quotas.charge(
        [
            quotas.Item(_repo(repos, item.repository_name).project_id, item.digest, item.size)
            for _, item in placed
        ]
    )
    errors.update((n, error) for (n, _), error in zip(placed, refusals, strict=True) if error)
    good = [item for n, item in enumerate(items) if n not in errors]
    sizes = {item.digest: item.size for item in good}
    blobs = {blob.digest: blob for blob in Blob.objects.filter(digest__in=sorted(sizes))}
    new = [
        Blob(digest=digest, size=size)
        for digest, size in sorted(sizes.items())
        if digest not in blobs
    ]
    if new:
        Blob.objects.bulk_create(new, ignore_conflicts=True)
        blobs.update(
            (blob.digest, blob) for blob in Blob.objects.filter(digest__in=[b.digest for b in new])
        )
    links = sorted(
        {(_repo(repos, item.repository_name).pk, blobs[item.digest].pk) for item in good}
    )
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository_id=repo, blob_id=blob) for repo, blob in links],
        ignore_conflicts=True,
    )
    # A refused upload's session is spent too: its bytes went to storage.
    spent = refused(errors)
    sessions = sorted(
        item.upload_id
        for n, item in enumerate(items)
        if item.upload_id is not None and (n not in errors or n in spent)
    )
    if sessions:
        Upload.objects.filter(pk__in=sessions).delete()
    return [errors.get(n) or blobs[item.digest] for n, item in enumerate(items)]


def _repo(repos: dict[str, Repository | RegistryError], name: str) -> Repository:
    found = repos[name]
    assert isinstance(found, Repository)  # filtered by the caller
    return found


def refused(errors: dict[int, Exception]) -> set[int]:
    """The items of a batch refused by their project's quota."""
    return {
        n
        for n, error in errors.items()
        if isinstance(error, RegistryError) and error.code is Code.DENIED
    }


_registrations: GroupCommit[Registration, Blob] = GroupCommit(_register)


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
        (refusal,) = quotas.charge([quotas.Item(repo.project_id, blob.digest, blob.size)])
        if refusal is not None:
            raise refusal
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
        # Locked (PostgreSQL; SQLite runs one writer at a time anyway): a manifest
        # PUT that found this link locks it too (manifests._referenced_blobs), so
        # the check below sees that manifest once it has committed.
        link = (
            RepositoryBlob.objects.select_related("blob")
            .select_for_update(of=("self",))
            .filter(repository__name=repository_name, blob__digest=digest)
            .select_related("repository")
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
        quotas.release(project_id=link.repository.project_id, digests=[digest])


def blob_sources(*, digest: str, exclude: str, limit: int = 50) -> list[str]:
    """Repositories holding ``digest``: candidates for a mount without ``from``."""
    return list(
        RepositoryBlob.objects.filter(blob__digest=digest)
        .exclude(repository__name=exclude)
        .order_by("repository__name")
        .values_list("repository__name", flat=True)[:limit]
    )
