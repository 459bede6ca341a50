"""Manifests and tags: put, get, delete, list, referrers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django.utils import timezone

from accounts.access import Actor, split_repository
from accounts.models import Project
from audit.events import Operation, Resource
from audit.services import event_entry
from kit import events
from registry.errors import Code, RegistryError
from registry.manifests import ParsedManifest, parse_manifest, referrer_artifact_type
from registry.models import Manifest, ManifestBlob, ManifestChild, Repository, RepositoryBlob, Tag
from registry.reference import Digest, check_tag, is_tag, looks_like_digest, parse_digest
from registry.services import cache, immutability, quotas
from registry.services.deletes import require_deletes_enabled
from registry.services.repositories import repository_ensure


@dataclass(frozen=True, slots=True)
class ManifestContent:
    digest: str
    media_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: str
    subject: str
    tags: list[str]


def manifest_get(*, repository_name: str, reference: str) -> ManifestContent:
    """The manifest a tag or digest names in the repository: from the cache, or
    one query."""
    slot, content = cache.find(repository_name, reference)
    if content is None:
        content = _manifest_query(repository_name, reference)
        cache.put(slot, content)
    return content


def manifest_cached(*, repository_name: str, reference: str) -> ManifestContent | None:
    """``manifest_get`` from the cache only: None on a miss (or while the cache
    cannot be trusted), never a query."""
    return cache.find(repository_name, reference)[1]


def _manifest_query(repository_name: str, reference: str) -> ManifestContent:
    rows = Manifest.objects.filter(repository__name=repository_name)
    # A reference that cannot name anything is simply unknown on a read (the
    # conformance suite requires 404 here); writes answer 400 with its code.
    if looks_like_digest(reference):
        if not _valid_digest(reference):
            raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
        rows = rows.filter(digest=reference)
    elif is_tag(reference):
        rows = rows.filter(tags__name=reference)
    else:
        raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
    row = rows.values_list("digest", "media_type", "payload").first()
    if row is None:
        raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
    return ManifestContent(digest=row[0], media_type=row[1], payload=bytes(row[2]))


def _valid_digest(reference: str) -> bool:
    try:
        return str(parse_digest(reference)) == reference
    except RegistryError:
        return False


def _digest_of(body: bytes, algorithm: str) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


def manifest_put(
    *,
    repository_name: str,
    reference: str,
    body: bytes,
    content_type: str,
    extra_tags: list[str] | None = None,
    may_move_tags: Callable[[], bool] = lambda: True,
    actor: Actor | None = None,
    client: str = "",
) -> PutResult:
    """Store a manifest (by tag or by digest, with optional extra tags) after
    checking that everything it references exists in the repository, and
    write its ``manifest.pushed`` event (with the push's audit entry when an
    ``actor`` is given) in the same transaction.

    Moving a tag that already names another manifest asks ``may_move_tags`` (the
    caller's right to update the repository; case C26); it is asked only then.
    """
    tags = [check_tag(t) for t in extra_tags or []]
    if looks_like_digest(reference):
        wanted: Digest | None = parse_digest(reference)
    else:
        wanted = None
        tags.insert(0, check_tag(reference))
    parsed = parse_manifest(body, content_type)
    digest = _digest_of(body, wanted.algorithm if wanted else "sha256")
    if wanted is not None and digest != str(wanted):
        raise RegistryError(
            Code.DIGEST_INVALID,
            "manifest body does not match the digest in the URL",
            detail={"digest": str(wanted)},
        )
    with transaction.atomic():
        repo = repository_ensure(name=repository_name)
        blob_ids = _referenced_blobs(repo.pk, parsed)
        child_ids = _referenced_children(repo.pk, parsed)
        # Locked (PostgreSQL), as garbage collection locks an untagged manifest
        # before deleting it: a re-push or tag of a manifest it holds waits,
        # then finds it gone and stores it anew; one that holds it first is
        # skipped by the collection, and its last-seen time restarts the window.
        manifest = (
            Manifest.objects.select_for_update(of=("self",))
            .filter(repository=repo, digest=digest)
            .first()
        )
        if manifest is not None:
            Manifest.objects.filter(pk=manifest.pk).update(last_seen=timezone.now())
        else:
            (refusal,) = quotas.charge([quotas.Item(repo.project_id, digest, len(body))])
            if refusal is not None:
                raise refusal
            # Insert-or-nothing: the same manifest pushed under several tags at
            # once (docker push --all-tags, parallel CI jobs) must not collide on
            # (repository, digest); on PostgreSQL the loser waits, then reads
            # the winner's row.
            Manifest.objects.bulk_create(
                [
                    Manifest(
                        repository=repo,
                        digest=digest,
                        media_type=parsed.media_type,
                        artifact_type=referrer_artifact_type(parsed),
                        payload=body,
                        size=len(body),
                        subject_digest=parsed.subject.digest if parsed.subject else "",
                        annotations=parsed.annotations,
                    )
                ],
                ignore_conflicts=True,
            )
            manifest = Manifest.objects.select_for_update(of=("self",)).get(
                repository=repo, digest=digest
            )
            ManifestBlob.objects.bulk_create(
                [ManifestBlob(manifest=manifest, blob_id=b) for b in blob_ids],
                ignore_conflicts=True,
            )
            ManifestChild.objects.bulk_create(
                [ManifestChild(parent=manifest, child_id=c) for c in child_ids],
                ignore_conflicts=True,
            )
        moving = Tag.objects.filter(repository=repo, name__in=tags).exclude(manifest=manifest)
        if moving.exists() and not may_move_tags():
            raise RegistryError(
                Code.DENIED,
                "moving an existing tag needs the right to update the repository",
                detail={"tags": sorted(moving.values_list("name", flat=True))},
            )
        locked = set(immutability.protected(repository_name, tags))
        for tag in dict.fromkeys(tags):
            if tag in locked:
                _tag_keep(repository_name, repo_id=repo.pk, name=tag, manifest_id=manifest.pk)
            else:
                _tag_put(repo_id=repo.pk, name=tag, manifest_id=manifest.pk)
        cache.invalidate(repository_name)
        events.emit(
            events.MANIFEST_PUSHED,
            key=repository_name,
            repository=repository_name,
            digest=digest,
            media_type=parsed.media_type,
            size=len(body),
            tags=list(dict.fromkeys(tags)),
            **_audit(actor, client, Operation.PUSH, repository_name, reference, repo.project_id),
        )
    return PutResult(
        digest=digest,
        subject=parsed.subject.digest if parsed.subject else "",
        tags=list(dict.fromkeys(tags)),
    )


def _tag_put(*, repo_id: int, name: str, manifest_id: int) -> None:
    """Point a tag at a manifest: one atomic upsert, no read-modify-write race."""
    Tag.objects.bulk_create(
        [Tag(repository_id=repo_id, name=name, manifest_id=manifest_id, updated_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["repository", "name"],
        update_fields=["manifest", "updated_at"],
    )


def _tag_keep(repository_name: str, *, repo_id: int, name: str, manifest_id: int) -> None:
    """An immutable tag: created if absent, never moved. Insert-or-nothing, then
    look: a concurrent push that created it first wins, the others get 412."""
    Tag.objects.bulk_create(
        [Tag(repository_id=repo_id, name=name, manifest_id=manifest_id, updated_at=timezone.now())],
        ignore_conflicts=True,
    )
    if not Tag.objects.filter(repository_id=repo_id, name=name, manifest_id=manifest_id).exists():
        raise RegistryError(
            Code.TAG_IMMUTABLE,
            f"tag {name} in {repository_name} is immutable: it cannot be moved",
            detail={"tags": [name]},
        )


def _referenced_blobs(repo_id: int, parsed: ParsedManifest) -> list[int]:
    wanted = [d for d in ([parsed.config] if parsed.config else []) + parsed.layers]
    required = {d.digest: d for d in wanted if not d.foreign}
    optional = {d.digest: d for d in wanted if d.foreign}
    # The links are locked until the manifest is committed (PostgreSQL; SQLite
    # runs one writer at a time anyway): a concurrent blob unlink waits, then
    # finds the manifest and refuses, instead of removing a blob the manifest
    # was just found to reference. In one order, so two manifest PUTs sharing
    # blobs queue instead of deadlocking.
    found = {
        digest: (pk, size)
        for digest, pk, size in RepositoryBlob.objects.select_for_update(of=("self",))
        .filter(repository_id=repo_id, blob__digest__in=list(required) + list(optional))
        .order_by("blob_id")
        .values_list("blob__digest", "blob_id", "blob__size")
    }
    for digest, descriptor in required.items():
        if digest not in found:
            raise RegistryError(Code.MANIFEST_BLOB_UNKNOWN, detail={"digest": digest})
        if found[digest][1] != descriptor.size:
            raise RegistryError(
                Code.MANIFEST_INVALID,
                "descriptor size does not match the blob",
                detail={"digest": digest, "size": descriptor.size, "actual": found[digest][1]},
            )
    return [pk for pk, _ in found.values()]


def _referenced_children(repo_id: int, parsed: ParsedManifest) -> list[int]:
    if not parsed.manifests:
        return []
    digests = {d.digest: d for d in parsed.manifests}
    # Locked until the index is committed, in one order: garbage collection of
    # untagged manifests skips a child held here, and an index whose child it
    # deleted first finds the child missing (MANIFEST_BLOB_UNKNOWN).
    found = dict(
        Manifest.objects.select_for_update(of=("self",))
        .filter(repository_id=repo_id, digest__in=list(digests))
        .order_by("pk")
        .values_list("digest", "pk")
    )
    for digest in digests:
        if digest not in found:
            raise RegistryError(Code.MANIFEST_BLOB_UNKNOWN, detail={"digest": digest})
    return list(found.values())


def manifest_delete(
    *, repository_name: str, reference: str, actor: Actor | None = None, client: str = ""
) -> None:
    """DELETE by digest removes the manifest and its tags; by tag, just the tag.
    Writes ``artifact.deleted`` or ``tag.deleted`` (with the audit entry when an
    ``actor`` is given) in the same transaction."""
    require_deletes_enabled()
    audit = _audit(actor, client, Operation.DELETE, repository_name, reference)
    with transaction.atomic():
        cache.invalidate(repository_name)  # runs once the delete has committed
        if looks_like_digest(reference):
            digest = str(parse_digest(reference))
            _manifest_delete(repository_name, digest)
            events.emit(
                events.ARTIFACT_DELETED,
                key=repository_name,
                repository=repository_name,
                digest=digest,
                **audit,
            )
            return
        tag = Tag.objects.filter(repository__name=repository_name, name=check_tag(reference))
        if not tag.exists():
            raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
        immutability.require_mutable(repository_name, [reference])
        tag.delete()
        events.emit(
            events.TAG_DELETED,
            key=repository_name,
            repository=repository_name,
            tag=reference,
            **audit,
        )


def artifact_ref(repository_name: str, reference: str) -> str:
    """An artifact as the audit trail names it: ``name:tag`` or ``name@digest``."""
    sep = "@" if ":" in reference else ":"
    return f"{repository_name}{sep}{reference}"


def _audit(
    actor: Actor | None,
    client: str,
    operation: Operation,
    repository_name: str,
    reference: str,
    project_id: int | None = None,
) -> dict[str, Any]:
    """The event's audit entry, as /v2 records it: the artifact by tag or digest
    (in the project of ``project_id``; by name when not given)."""
    if actor is None:
        return {}
    entry = event_entry(
        actor=actor,
        operation=operation,
        resource_type=Resource.ARTIFACT,
        resource=artifact_ref(repository_name, reference),
        project=parts[0] if (parts := split_repository(repository_name)) else "",
        project_id=project_id,
        client_ip=client,
    )
    return {"audit": entry}


def _manifest_delete(repository_name: str, digest: str) -> None:
    manifest = (
        Manifest.objects.filter(repository__name=repository_name, digest=digest)
        .select_related("repository")
        .first()
    )
    if manifest is None:
        raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": digest})
    parents = list(
        ManifestChild.objects.filter(child=manifest).values_list("parent__digest", flat=True)[:5]
    )
    immutability.require_mutable(repository_name, manifest.tags.values_list("name", flat=True))
    if parents:
        raise RegistryError(
            Code.IN_USE,
            "manifest is listed by an index in this repository; delete the index first",
            detail={"digest": digest, "indexes": parents},
        )
    try:
        manifest.delete()
    except ProtectedError:
        raise RegistryError(Code.IN_USE, detail={"digest": digest}) from None
    quotas.release(project_id=manifest.repository.project_id, digests=[digest])


def _page(values: list[str], n: int) -> tuple[list[str], bool]:
    return values[:n], len(values) > n


def tags_list(*, repository_name: str, n: int, last: str) -> tuple[list[str], bool]:
    """A page of tag names in lexical order after ``last``; True if more follow."""

    repo_id = Repository.objects.filter(name=repository_name).values_list("pk", flat=True).first()
    if repo_id is None:
        raise RegistryError(Code.NAME_UNKNOWN, detail={"name": repository_name})
    rows = Tag.objects.filter(repository_id=repo_id)
    if last:
        rows = rows.filter(name__gt=last)
    names = list(rows.order_by("name").values_list("name", flat=True)[: n + 1])
    return _page(names, n)


def catalog_list(*, n: int, last: str, projects: QuerySet[Project]) -> tuple[list[str], bool]:
    """A page of the repositories in ``projects`` (those the caller may see)."""
    rows = Repository.objects.filter(project__in=projects)
    if last:
        rows = rows.filter(name__gt=last)
    names = list(rows.order_by("name").values_list("name", flat=True)[: n + 1])
    return _page(names, n)


def referrers_list(
    *, repository_name: str, digest: str, artifact_type: str, limit: int
) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose subject is ``digest``."""
    if "\x00" in artifact_type:
        return []  # no artifact type holds a NUL (PostgreSQL cannot even compare one)
    rows = Manifest.objects.filter(repository__name=repository_name, subject_digest=digest)
    if artifact_type:
        rows = rows.filter(artifact_type=artifact_type)
    out = []
    for media_type, ref_digest, size, a_type, notes in rows.order_by("digest").values_list(
        "media_type", "digest", "size", "artifact_type", "annotations"
    )[:limit]:
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": ref_digest, "size": size}
        if a_type:
            descriptor["artifactType"] = a_type
        if notes:
            descriptor["annotations"] = notes
        out.append(descriptor)
    return out
