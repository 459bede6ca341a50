"""Blobs as a repository sees them: linked, readable, mountable, unlinkable."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kit.db.group_commit import GroupCommit
from registry.errors import Code, RegistryError
from registry.models import Blob, ManifestBlob, Repository, RepositoryBlob, Upload
from registry.services.deletes import require_deletes_enabled
from registry.services.repositories import repositories_ensure, repository_ensure


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int


def blob_stat(*, repository_name: str, digest: str) -> BlobInfo:
    """The blob if it is linked into the repository; BLOB_UNKNOWN otherwise.

    Telling a client a blob exists is a promise garbage collection keeps for
    its time window: the link's last-seen time is refreshed when older than
    BERTH_GC_TOUCH_INTERVAL (a conditional update; none on most requests). If
    collection deleted the link in between, the refresh finds nothing and the
    answer is BLOB_UNKNOWN, as it would have been a moment later."""
    row = (
        RepositoryBlob.objects.filter(repository__name=repository_name, blob__digest=digest)
        .values_list("pk", "blob__digest", "blob__size", "last_seen")
        .first()
    )
    if row is None:
        raise RegistryError(Code.BLOB_UNKNOWN, detail={"digest": digest})
    pk, found, size, last_seen = row
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=settings.BERTH_GC_TOUCH_INTERVAL)
    if last_seen < stale and not RepositoryBlob.objects.filter(pk=pk).update(last_seen=now):
        raise RegistryError(Code.BLOB_UNKNOWN, detail={"digest": digest})
    return BlobInfo(digest=found, size=size)


@dataclass(frozen=True, slots=True)
class Registration:
    """Verified, durably stored bytes to record, and the upload session that
    brought them (its row goes in the same transaction)."""

    repository_name: str
    digest: str
    size: int
    upload_id: uuid.UUID | None = None
    # The bytes were not moved in: a live blob of this digest was found stored.
    # Link that row only; never create one (its bytes may be gone with it).
    existing: bool = False


def blob_register(
    *,
    repository_name: str,
    digest: str,
    size: int,
    upload_id: uuid.UUID | None = None,
    existing: bool = False,
) -> Blob:
    """Record verified, durably stored bytes and link them into the repository;
    delete the upload session that brought them, if named.

    Concurrent registrations share one transaction (``kit.db.group_commit``):
    under concurrent pushes they are most of the writes that queue for SQLite's
    one writer. A concurrent upload of the same bytes may insert the blob first;
    both then link the same row."""
    return _registrations.submit(Registration(repository_name, digest, size, upload_id, existing))


def _register(items: Sequence[Registration]) -> list[Blob | Exception]:
    """The registrations of a batch: blobs inserted-or-nothing and read back
    under their row locks, links inserted (or their last-seen time refreshed),
    sessions deleted; rows in sorted order. An item whose repository cannot
    exist, or whose blob garbage collection is deleting, gets its error and
    changes nothing."""
    repos = repositories_ensure(item.repository_name for item in items)
    good = [item for item in items if isinstance(repos[item.repository_name], Repository)]
    sizes = {item.digest: item.size for item in good}
    Blob.objects.bulk_create(
        [
            Blob(digest=digest, size=size)
            for digest, size in sorted({i.digest: i.size for i in good if not i.existing}.items())
        ],
        ignore_conflicts=True,
    )
    # Locked (PostgreSQL): garbage collection marks a blob deleting under its
    # FOR UPDATE lock after checking nothing links it; a link inserted here is
    # seen by that check, and a blob it marked first is refused here. NO KEY:
    # a manifest PUT's foreign-key checks (FOR KEY SHARE on the blob, while it
    # holds the links) do not wait for this lock, so no cycle with the links.
    blobs = {
        blob.digest: blob
        for blob in Blob.objects.select_for_update(no_key=True)
        .filter(digest__in=sorted(sizes))
        .order_by("pk")
    }
    errors: dict[str, Exception] = {}
    for item in items:
        repo = repos[item.repository_name]
        if not isinstance(repo, Repository):
            errors[item.digest + " " + item.repository_name] = repo
        elif item.digest not in blobs or blobs[item.digest].deleting:
            errors[item.digest + " " + item.repository_name] = BlobBeingDeleted(item.digest)
    live = [item for item in good if item.digest + " " + item.repository_name not in errors]
    links = sorted({(repos[item.repository_name].pk, blobs[item.digest].pk) for item in live})
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository_id=repo, blob_id=blob) for repo, blob in links],
        update_conflicts=True,
        unique_fields=["repository", "blob"],
        update_fields=["last_seen"],
    )
    sessions = sorted(item.upload_id for item in live if item.upload_id is not None)
    if sessions:
        Upload.objects.filter(pk__in=sessions).delete()
    return [
        errors.get(item.digest + " " + item.repository_name) or blobs[item.digest] for item in items
    ]


class BlobBeingDeleted(RegistryError):
    """Garbage collection is deleting the blob of this digest: its row goes
    with its bytes, and nothing may link it meanwhile."""

    def __init__(self, digest: str) -> None:
        super().__init__(
            Code.BLOB_UNKNOWN,
            "blob is being deleted by garbage collection; upload it again",
            detail={"digest": digest},
        )


_registrations: GroupCommit[Registration, Blob] = GroupCommit(_register)


def blob_mount(*, repository_name: str, digest: str, source_names: list[str]) -> BlobInfo | None:
    """Link a blob already linked in one of ``source_names`` (which the caller has
    been checked to read) into the repository. None when no source has it, or
    garbage collection is deleting it (the client then uploads it)."""
    if not source_names:
        return None
    with transaction.atomic():
        # The blob's row lock, as a registration takes it (see _register).
        blob = (
            Blob.objects.select_for_update(no_key=True)
            .filter(
                digest=digest,
                deleting=False,
                pk__in=RepositoryBlob.objects.filter(
                    repository__name__in=source_names, blob__digest=digest
                ).values("blob_id"),
            )
            .first()
        )
        if blob is None:
            return None
        repo = repository_ensure(name=repository_name)
        RepositoryBlob.objects.bulk_create(
            [RepositoryBlob(repository=repo, blob=blob)],
            update_conflicts=True,
            unique_fields=["repository", "blob"],
            update_fields=["last_seen"],
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
