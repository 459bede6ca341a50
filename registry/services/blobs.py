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
from registry.services import quotas
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
    under their row locks, the projects charged (registry/services/quotas.py),
    links inserted (or their last-seen time refreshed), sessions deleted; rows
    in sorted order. An item whose repository cannot exist, whose blob garbage
    collection is deleting, or that its project's quota refuses, gets its error
    and links nothing.

    The order matters: the blob's lock and ``deleting`` check come first, so a
    project is never charged for a blob the collector is taking away; the
    charge comes before the link, so nothing is linked over the limit."""
    repos = repositories_ensure(item.repository_name for item in items)
    placed = [item for item in items if isinstance(repos[item.repository_name], Repository)]
    sizes = {item.digest: item.size for item in placed}
    Blob.objects.bulk_create(
        [
            Blob(digest=digest, size=size)
            for digest, size in sorted({i.digest: i.size for i in placed if not i.existing}.items())
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
    errors: dict[int, Exception] = {}
    for n, item in enumerate(items):
        repo = repos[item.repository_name]
        if not isinstance(repo, Repository):
            errors[n] = repo
        elif item.digest not in blobs or blobs[item.digest].deleting:
            errors[n] = BlobBeingDeleted(item.digest)
    # The project is charged before anything is linked: a refused item links
    # nothing (its stored bytes have no link and are garbage collection's).
    charged = [(n, item) for n, item in enumerate(items) if n not in errors]
    refusals = quotas.charge(
        [
            quotas.Item(_repo(repos, item.repository_name).project_id, item.digest, item.size)
            for _, item in charged
        ]
    )
    errors.update((n, error) for (n, _), error in zip(charged, refusals, strict=True) if error)
    live = [item for n, item in enumerate(items) if n not in errors]
    links = sorted(
        {(_repo(repos, item.repository_name).pk, blobs[item.digest].pk) for item in live}
    )
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository_id=repo, blob_id=blob) for repo, blob in links],
        update_conflicts=True,
        unique_fields=["repository", "blob"],
        update_fields=["last_seen"],
    )
    # A session refused by the quota is spent too (the caller drops its bytes);
    # one refused because its blob is being deleted stays, for the caller to
    # store its bytes once the sweep is done.
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
        (refusal,) = quotas.charge([quotas.Item(repo.project_id, blob.digest, blob.size)])
        if refusal is not None:
            raise refusal
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
