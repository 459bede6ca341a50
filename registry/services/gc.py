"""Online garbage collection from database references (docs/gc.md).

What can go is decided from rows, never by walking storage:

1. untagged manifests (``delete_untagged``): no tag, listed by no index, not a
   referrer of a manifest still present, last pushed before the window;
2. repository↔blob links no manifest of their repository references, last
   seen (uploaded, mounted, HEAD or GET) before the window;
3. blobs nothing links or references, created before the window: marked
   ``deleting`` under their row lock, then their bytes deleted in batches,
   then their rows;
4. upload sessions idle past ``BERTH_UPLOAD_MAX_AGE``.

Every delete takes the row locks a push takes and re-checks its condition
after them, in a new statement (so it sees whatever a push committed while it
waited); rows a push holds are skipped (``skip_locked``), left for the next run.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from kit import events
from registry.models import Blob, Manifest, ManifestBlob, ManifestChild, RepositoryBlob, Tag
from registry.services import cache, quotas
from registry.services.uploads import uploads_purge
from registry.storage import blob_store

BATCH = 500


class Stopped(Exception):
    """The run was asked to stop; what it did so far stays done."""


@dataclass(frozen=True, slots=True)
class Options:
    delete_untagged: bool = False
    window: datetime.timedelta = datetime.timedelta(hours=2)
    workers: int = 1
    dry_run: bool = False


@dataclass(slots=True)
class Result:
    manifests: int = 0
    links: int = 0
    blobs: int = 0
    freed_bytes: int = 0
    uploads: int = 0
    log: list[str] = field(default_factory=list)


Log = Callable[[str], None]
ShouldStop = Callable[[], bool]


def effective_window(window: datetime.timedelta) -> datetime.timedelta:
    """The window asked for, never below ``BERTH_GC_MIN_WINDOW``: the time a
    client may take between being told a blob exists and pushing the manifest
    that references it, and an upload's last step (docs/gc.md)."""
    return max(window, datetime.timedelta(seconds=settings.BERTH_GC_MIN_WINDOW))


# --- what is unreferenced -------------------------------------------------------


def _untagged(cutoff: datetime.datetime) -> QuerySet[Manifest]:
    """Manifests no tag names, no index lists, that are not the referrer of a
    manifest still present in their repository, last pushed before ``cutoff``."""
    subject_present = Manifest.objects.filter(
        repository_id=OuterRef("repository_id"), digest=OuterRef("subject_digest")
    )
    return (
        Manifest.objects.filter(last_seen__lt=cutoff)
        .exclude(Exists(Tag.objects.filter(manifest_id=OuterRef("pk"))))
        .exclude(Exists(ManifestChild.objects.filter(child_id=OuterRef("pk"))))
        .exclude(~Q(subject_digest="") & Exists(subject_present))
    )


def _unneeded_links(cutoff: datetime.datetime) -> QuerySet[RepositoryBlob]:
    needed = ManifestBlob.objects.filter(
        blob_id=OuterRef("blob_id"), manifest__repository_id=OuterRef("repository_id")
    )
    return RepositoryBlob.objects.filter(last_seen__lt=cutoff).exclude(Exists(needed))


def _orphan_blobs(cutoff: datetime.datetime) -> QuerySet[Blob]:
    return (
        Blob.objects.filter(deleting=False, created_at__lt=cutoff)
        .exclude(Exists(RepositoryBlob.objects.filter(blob_id=OuterRef("pk"))))
        .exclude(Exists(ManifestBlob.objects.filter(blob_id=OuterRef("pk"))))
    )


def _batches(rows: QuerySet[Any], size: int = BATCH) -> Iterator[list[int]]:
    """Primary keys of ``rows`` in ascending batches (keyset: re-queried after
    each batch, so rows deleted meanwhile are never revisited)."""
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]


# --- the collection -------------------------------------------------------------


def collect(
    *, options: Options, log: Log = lambda line: None, should_stop: ShouldStop = lambda: False
) -> Result:
    """One collection (or, with ``dry_run``, what one would free now)."""
    window = effective_window(options.window)
    cutoff = timezone.now() - window
    result = Result()
    log(
        f"start: delete_untagged={options.delete_untagged} window={window} "
        f"workers={options.workers} dry_run={options.dry_run}"
    )
    if options.dry_run:
        _estimate(options, cutoff, result, log)
        return result
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="berth-gc") as pool:
        # Rows a crashed or stopped run marked first: their bytes may be half gone.
        _sweep_marked(pool, options.workers, result, log, should_stop)
        if options.delete_untagged:
            _delete_untagged(cutoff, result, log, should_stop)
        _delete_links(cutoff, result, log, should_stop)
        _delete_blobs(cutoff, pool, options.workers, result, log, should_stop)
    result.uploads = uploads_purge(
        older_than=datetime.timedelta(seconds=settings.BERTH_UPLOAD_MAX_AGE)
    )
    log(f"upload sessions purged: {result.uploads}")
    log(
        f"done: {result.manifests} manifests, {result.links} links, {result.blobs} blobs, "
        f"{result.freed_bytes} bytes freed"
    )
    return result


def _stop_point(should_stop: ShouldStop, log: Log) -> None:
    if should_stop():
        log("stop requested: stopping")
        raise Stopped


def _estimate(options: Options, cutoff: datetime.datetime, result: Result, log: Log) -> None:
    """A dry run: the untagged manifests that would go, and the blobs that
    would be freed once they are gone (no manifest but those references them,
    no link seen inside the window)."""
    doomed = _untagged(cutoff) if options.delete_untagged else Manifest.objects.none()
    kept_refs = ManifestBlob.objects.filter(blob_id=OuterRef("pk")).exclude(
        manifest_id__in=doomed.values("pk")
    )
    fresh_links = RepositoryBlob.objects.filter(blob_id=OuterRef("pk"), last_seen__gte=cutoff)
    freed = (
        Blob.objects.filter(created_at__lt=cutoff)
        .exclude(Exists(kept_refs))
        .exclude(Exists(fresh_links))
    )
    result.manifests = doomed.count()
    result.links = _unneeded_links(cutoff).count()
    totals = freed.aggregate(n=Count("pk"), size=Sum("size"))
    result.blobs = totals["n"] or 0
    result.freed_bytes = totals["size"] or 0
    log(
        f"dry run: would delete {result.manifests} untagged manifests, at least "
        f"{result.links} links and {result.blobs} blobs, freeing {result.freed_bytes} bytes"
    )


def _delete_untagged(
    cutoff: datetime.datetime, result: Result, log: Log, should_stop: ShouldStop
) -> None:
    # Deleting a subject frees its referrers (and an index frees its children)
    # for the next pass; bounded, since every pass deletes or stops.
    for _ in range(10):
        deleted = 0
        for batch in _batches(_untagged(cutoff)):
            _stop_point(should_stop, log)
            deleted += _delete_manifests(batch, cutoff)
        result.manifests += deleted
        log(f"untagged manifests deleted: {deleted}")
        if not deleted:
            return


def _delete_manifests(batch: Sequence[int], cutoff: datetime.datetime) -> int:
    with transaction.atomic():
        # The manifest rows a push takes (manifest_put locks the manifest it
        # re-pushes or tags, and the children an index lists): skipped while
        # held, re-checked once ours.
        locked = list(
            Manifest.objects.select_for_update(skip_locked=True)
            .filter(pk__in=batch)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        doomed = list(
            _untagged(cutoff)
            .filter(pk__in=locked)
            .values_list("pk", "repository__name", "digest", "repository__project_id")
        )
        if not doomed:
            return 0
        for _, repository_name, digest, _ in doomed:
            cache.invalidate(repository_name)
            events.emit(
                events.ARTIFACT_DELETED,
                key=repository_name,
                repository=repository_name,
                digest=digest,
                reason="garbage collection: untagged",
            )
        Manifest.objects.filter(pk__in=[pk for pk, _, _, _ in doomed]).delete()
        _release((project_id, digest) for _, _, digest, project_id in doomed)
    return len(doomed)


def _release(gone: Iterable[tuple[int, str]]) -> None:
    """Stop charging the projects for the digests they no longer hold, in the
    transaction of the deletes (registry/services/quotas.py): usage is exact
    after a run, with no wait for the reconcile job."""
    by_project: dict[int, set[str]] = {}
    for project_id, digest in gone:
        by_project.setdefault(project_id, set()).add(digest)
    for project_id, digests in sorted(by_project.items()):
        quotas.release(project_id=project_id, digests=digests)


def _delete_links(
    cutoff: datetime.datetime, result: Result, log: Log, should_stop: ShouldStop
) -> None:
    deleted = 0
    for batch in _batches(_unneeded_links(cutoff)):
        _stop_point(should_stop, log)
        with transaction.atomic():
            # A manifest PUT holds the links it references until it commits:
            # skip those; for the rest, the check below is a new statement,
            # so it sees every manifest committed before we held the lock.
            locked = list(
                RepositoryBlob.objects.select_for_update(skip_locked=True)
                .filter(pk__in=batch)
                .order_by("repository_id", "blob_id")
                .values_list("pk", flat=True)
            )
            doomed = list(
                _unneeded_links(cutoff)
                .filter(pk__in=locked)
                .values_list("pk", "repository__project_id", "blob__digest")
            )
            if doomed:
                deleted += RepositoryBlob.objects.filter(
                    pk__in=[pk for pk, _, _ in doomed]
                ).delete()[0]
                _release((project_id, digest) for _, project_id, digest in doomed)
    result.links += deleted
    log(f"repository links deleted: {deleted}")


def _delete_blobs(
    cutoff: datetime.datetime,
    pool: ThreadPoolExecutor,
    workers: int,
    result: Result,
    log: Log,
    should_stop: ShouldStop,
) -> None:
    for batch in _batches(_orphan_blobs(cutoff)):
        _stop_point(should_stop, log)
        with transaction.atomic():
            # Mark under the row lock: a registration or a mount locks the row
            # too and links only a blob it finds not deleting; the check is a
            # new statement after the lock, so it sees their committed links.
            locked = list(
                Blob.objects.select_for_update(skip_locked=True)
                .filter(pk__in=batch)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            doomed = list(_orphan_blobs(cutoff).filter(pk__in=locked).values_list("pk", flat=True))
            Blob.objects.filter(pk__in=doomed).update(deleting=True)
        if doomed and settings.BERTH_GC_SWEEP_PAUSE:
            # Widens the window between mark and sweep, in which pushes of the
            # same bytes race the collection (the race tests set it).
            time.sleep(settings.BERTH_GC_SWEEP_PAUSE)
        _sweep(doomed, pool, workers, result)
    log(f"blobs deleted: {result.blobs}, {result.freed_bytes} bytes freed")


def _sweep_marked(
    pool: ThreadPoolExecutor, workers: int, result: Result, log: Log, should_stop: ShouldStop
) -> None:
    for batch in _batches(Blob.objects.filter(deleting=True)):
        _stop_point(should_stop, log)
        _sweep(batch, pool, workers, result)


def _sweep(pks: Sequence[int], pool: ThreadPoolExecutor, workers: int, result: Result) -> None:
    """Bytes first, rows after: a row marked deleting whose bytes are gone is
    finished by the next run; bytes without a row never happen here."""
    if not pks:
        return
    rows = list(Blob.objects.filter(pk__in=pks, deleting=True).values_list("pk", "digest", "size"))
    digests = [digest for _, digest, _ in rows]
    store = blob_store()
    share = -(-len(digests) // workers)
    chunks = [digests[i : i + share] for i in range(0, len(digests), share)]
    for done in pool.map(store.delete_blobs, chunks):
        del done
    deleted, _ = Blob.objects.filter(pk__in=[pk for pk, _, _ in rows], deleting=True).delete()
    result.blobs += deleted
    result.freed_bytes += sum(size for _, _, size in rows)
