"""Artifacts (manifests) and tags as Harbor's API presents them: list, get,
delete, tag, untag, copy between repositories. Permission checks happen in the
API layer through accounts.access; these functions keep the content rules."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch, QuerySet

from accounts.access import Actor, split_repository
from accounts.models import Project
from audit.events import Operation, Resource
from audit.services import record
from kit import events
from registry.errors import Code, RegistryError
from registry.models import Manifest, Repository, RepositoryBlob, Tag
from registry.reference import check_tag, looks_like_digest, parse_digest
from registry.services import cache, immutability, quotas
from registry.services.deletes import require_deletes_enabled
from registry.services.manifests import _tag_put, manifest_delete, manifest_put
from registry.services.repositories import repository_ensure

MAX_COPY_DEPTH = 8


def repositories_in(projects: QuerySet) -> QuerySet[Repository]:
    return Repository.objects.filter(project__in=projects).select_related("project")


def artifacts_of(repository: Repository) -> QuerySet[Manifest]:
    """Every manifest of the repository with its tags: two queries for a page."""
    return (
        Manifest.objects.filter(repository=repository)
        .defer("payload")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .order_by("-created_at", "-id")
    )


def artifacts_of_project(project: Project) -> QuerySet[Manifest]:
    """Every manifest of the project's repositories, with repository and tags:
    three queries for a page."""
    return (
        Manifest.objects.filter(repository__project=project)
        .select_related("repository")
        .defer("payload")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .order_by("-created_at", "-id")
    )


def artifact_get(*, repository: Repository, reference: str) -> Manifest:
    rows = Manifest.objects.filter(repository=repository).prefetch_related("tags")
    if looks_like_digest(reference):
        manifest = rows.filter(digest=str(parse_digest(reference))).first()
    else:
        manifest = rows.filter(tags__name=check_tag(reference)).first()
    if manifest is None:
        raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"reference": reference[:200]})
    return manifest


def artifact_delete(*, actor: Actor, repository: Repository, reference: str) -> Manifest:
    """Delete an artifact by tag or digest; audited through its durable event."""
    manifest = artifact_get(repository=repository, reference=reference)
    manifest_delete(repository_name=repository.name, reference=manifest.digest, actor=actor)
    return manifest


def tag_create(*, actor: Actor, repository: Repository, reference: str, name: str) -> None:
    manifest = artifact_get(repository=repository, reference=reference)
    check_tag(name)
    if Tag.objects.filter(repository=repository, name=name).exists():
        raise RegistryError(Code.IN_USE, f"tag {name} already exists")
    with transaction.atomic():
        _tag_put(repo_id=repository.pk, name=name, manifest_id=manifest.pk)
        cache.invalidate(repository.name)
        _record(actor, Operation.CREATE, Resource.TAG, f"{repository.name}:{name}", repository)
        events.emit(
            events.TAG_CREATED,
            key=repository.name,
            repository=repository.name,
            tag=name,
            digest=manifest.digest,
        )


def tag_delete(*, actor: Actor, repository: Repository, reference: str, name: str) -> None:
    require_deletes_enabled()
    manifest = artifact_get(repository=repository, reference=reference)
    with transaction.atomic():
        tag = Tag.objects.filter(repository=repository, manifest=manifest, name=name)
        if not tag.exists():
            raise RegistryError(Code.MANIFEST_UNKNOWN, detail={"tag": name[:200]})
        immutability.require_mutable(repository.name, [name])
        tag.delete()
        cache.invalidate(repository.name)
        _record(actor, Operation.DELETE, Resource.TAG, f"{repository.name}:{name}", repository)
        events.emit(events.TAG_DELETED, key=repository.name, repository=repository.name, tag=name)


def artifact_copy(
    *, actor: Actor, source: Repository, reference: str, target_name: str
) -> Manifest:
    """Copy an artifact (and, for an index, its children) into another repository:
    blobs are linked, never copied; the caller has been checked to read the source
    and push to the target."""
    manifest = artifact_get(repository=source, reference=reference)
    with transaction.atomic():
        repository_ensure(name=target_name)
        _copy(source, manifest, target_name, depth=0)
        if not looks_like_digest(reference):
            manifest_put(
                repository_name=target_name,
                reference=reference,
                body=bytes(manifest.payload),
                content_type=manifest.media_type,
            )
        target = Repository.objects.get(name=target_name)
        _record(
            actor,
            Operation.CREATE,
            Resource.ARTIFACT,
            f"{target_name}@{manifest.digest}",
            target,
            {"from": f"{source.name}@{manifest.digest}"},
        )
    return Manifest.objects.get(repository__name=target_name, digest=manifest.digest)


def _copy(source: Repository, manifest: Manifest, target_name: str, depth: int) -> None:
    if depth > MAX_COPY_DEPTH:
        raise RegistryError(Code.MANIFEST_INVALID, "index nesting too deep to copy")
    target = Repository.objects.get(name=target_name)
    for child in Manifest.objects.filter(parent_refs__parent=manifest):
        _copy(source, child, target_name, depth + 1)
    blobs = list(manifest.blob_refs.values_list("blob_id", "blob__digest", "blob__size"))
    for refusal in quotas.charge(
        [quotas.Item(target.project_id, digest, size) for _, digest, size in blobs]
    ):
        if refusal is not None:
            raise refusal
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository=target, blob_id=b) for b, _, _ in blobs], ignore_conflicts=True
    )
    manifest_put(
        repository_name=target_name,
        reference=manifest.digest,
        body=bytes(manifest.payload),
        content_type=manifest.media_type,
    )


def repository_update(*, actor: Actor, repository: Repository, description: str) -> None:
    """Harbor's editable repository field: its description."""
    with transaction.atomic():
        repository.description = description
        repository.save(update_fields=["description", "updated_at"])
        _record(actor, Operation.UPDATE, Resource.REPOSITORY, repository.name, repository)


def repository_delete(*, actor: Actor, repository: Repository) -> None:
    """Delete a repository with all its artifacts and tags (bytes stay for GC)."""
    require_deletes_enabled()
    with transaction.atomic():
        tags = Tag.objects.filter(repository=repository)
        immutability.require_mutable(repository.name, tags.values_list("name", flat=True))
        held = {
            *RepositoryBlob.objects.filter(repository=repository).values_list(
                "blob__digest", flat=True
            ),
            *Manifest.objects.filter(repository=repository).values_list("digest", flat=True),
        }
        tags.delete()
        # Children are protected while an index lists them: delete parents first.
        for _ in range(MAX_COPY_DEPTH + 1):
            top = Manifest.objects.filter(repository=repository, parent_refs__isnull=True)
            if not top.exists():
                break
            top.delete()
        repository.delete()
        quotas.release(project_id=repository.project_id, digests=held)
        cache.invalidate(repository.name)
        _record(actor, Operation.DELETE, Resource.REPOSITORY, repository.name, repository)
        events.emit(events.REPOSITORY_DELETED, key=repository.name, repository=repository.name)


def _record(
    actor: Actor,
    operation: Operation,
    resource_type: Resource,
    resource: str,
    repository: Repository,
    detail: dict[str, str] | None = None,
) -> None:
    """The change's audit row, in the change's transaction."""
    record(
        actor=actor,
        operation=operation,
        resource_type=resource_type,
        resource=resource,
        project=parts[0] if (parts := split_repository(repository.name)) else "",
        project_id=repository.project_id,
        detail=detail,
    )
