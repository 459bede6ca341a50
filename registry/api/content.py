"""Harbor's content API: repositories, artifacts and tags of a project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from django.db.models import Count
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.access import Actor
from accounts.api.base import HarborView, body, created, project_from
from accounts.api.paging import apply_sort, paginate, parse_q, q_and_list, query_bool
from accounts.api.render import ts
from accounts.errors import Invalid, NotFound
from accounts.models import Project
from accounts.services.projects import project_lookup
from registry.manifests import INDEX_TYPES
from registry.models import Manifest, Repository, Tag
from registry.services import artifacts as svc
from registry.services import immutability, labels

REPO_Q = {"name": "name"}
IMAGE_CONFIGS = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
}
REPO_SORT = {"name": "name", "creation_time": "created_at", "update_time": "updated_at"}


def _repo_name(project: Project, raw: str) -> str:
    # Harbor clients send the name without the project, slashes encoded (even
    # twice: %252F); the server decoded once already.
    return f"{project.name}/{unquote(raw)}"


def _project(actor: Actor, ref: str) -> Project:
    return project_lookup(actor=actor, ref=ref, by_name=True)


def _repository(actor: Actor, project: Project, raw: str) -> Repository:
    repo = Repository.objects.filter(project=project, name=_repo_name(project, raw)).first()
    if repo is None:
        raise NotFound(raw)
    return repo


@dataclass(frozen=True)
class Scope:
    """Who asks, in which project (and repository), checked for one action."""

    actor: Actor
    project: Project
    repository: Repository | None = None

    @property
    def repo(self) -> Repository:
        assert self.repository is not None
        return self.repository


def scope(
    view: HarborView, request: Request, ref: str, permission: str, repo: str | None = None
) -> Scope:
    """The view's preamble: the caller, the project (404 if it may not see it), the
    ``resource:action`` permission (403), then the repository if named (404)."""
    actor = view.actor(request)
    project = _project(actor, ref)
    resource, _, action = permission.partition(":")
    access.require(actor, resource, action, project)
    repository = _repository(actor, project, repo) if repo is not None else None
    return Scope(actor, project, repository)


def render_repo(repo: Repository, artifact_count: int) -> dict[str, Any]:
    return {
        "id": repo.pk,
        "project_id": repo.project_id,
        "name": repo.name,
        "description": repo.description,
        "artifact_count": artifact_count,
        "pull_count": repo.pull_count,
        "creation_time": ts(repo.created_at),
        "update_time": ts(repo.updated_at),
    }


def render_artifact(
    manifest: Manifest,
    repo: Repository,
    with_tag: bool = True,
    immutable: immutability.Matcher | None = None,
    with_label: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": manifest.pk,
        "type": "IMAGE"
        if manifest.media_type in INDEX_TYPES or manifest.artifact_type in IMAGE_CONFIGS
        else "UNKNOWN",
        "media_type": manifest.artifact_type or manifest.media_type,
        "manifest_media_type": manifest.media_type,
        "artifact_type": manifest.artifact_type,
        "project_id": repo.project_id,
        "repository_id": repo.pk,
        "repository_name": repo.name,
        "digest": manifest.digest,
        "size": manifest.size,
        "push_time": ts(manifest.created_at),
        "pull_time": ts(repo.last_pulled_at),
        "annotations": manifest.annotations or {},
        "extra_attrs": {},
        "references": [],
    }
    if with_tag:
        out["tags"] = [render_tag(tag, repo, manifest, immutable) for tag in manifest.tags.all()]
    if with_label:
        out["labels"] = [labels.render(label) for label in manifest.labels.all()]
    return out


def render_tag(
    tag: Tag, repo: Repository, manifest: Manifest, immutable: immutability.Matcher | None
) -> dict[str, Any]:
    return {
        "id": tag.pk,
        "repository_id": repo.pk,
        "artifact_id": manifest.pk,
        "name": tag.name,
        "push_time": ts(tag.updated_at),
        "pull_time": ts(repo.last_pulled_at),
        "immutable": bool(immutable and immutable(repo.name, tag.name)),
    }


class RepositoryList(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        at = scope(self, request, ref, "repository:list")
        rows = Repository.objects.filter(project=at.project, **parse_q(request, REPO_Q))
        rows = apply_sort(rows.annotate(n=Count("manifests")), request, REPO_SORT, "name")
        return paginate(request, rows, lambda page: [render_repo(r, r.n) for r in page])


class AllRepositories(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        rows = Repository.objects.filter(
            project__in=access.visible_projects(actor), **parse_q(request, REPO_Q)
        )
        rows = apply_sort(rows.annotate(n=Count("manifests")), request, REPO_SORT, "name")
        return paginate(request, rows, lambda page: [render_repo(r, r.n) for r in page])


class RepositoryDetail(HarborView):
    def get(self, request: Request, ref: str, repo: str) -> Response:
        at = scope(self, request, ref, "repository:read", repo)
        return Response(render_repo(at.repo, at.repo.manifests.count()))

    def put(self, request: Request, ref: str, repo: str) -> Response:
        at = scope(self, request, ref, "repository:update", repo)
        description = str(body(request).get("description", ""))
        svc.repository_update(actor=at.actor, repository=at.repo, description=description)
        return Response(status=200)

    def delete(self, request: Request, ref: str, repo: str) -> Response:
        at = scope(self, request, ref, "repository:delete", repo)
        svc.repository_delete(actor=at.actor, repository=at.repo)
        return Response(status=200)


class ArtifactList(HarborView):
    def get(self, request: Request, ref: str, repo: str) -> Response:
        at = scope(self, request, ref, "artifact:list", repo)
        with_tag = query_bool(request, "with_tag") is not False
        with_label = query_bool(request, "with_label") is True
        immutable = immutability.matcher_for(at.project)
        rows = svc.artifacts_of(at.repo)
        if (label_ids := q_and_list(request, "labels")) is not None:
            rows = labels.labelled(rows, label_ids)
        if with_label:
            rows = rows.prefetch_related("labels")
        return paginate(
            request,
            rows,
            lambda page: [
                render_artifact(m, at.repo, with_tag, immutable, with_label) for m in page
            ],
        )

    def post(self, request: Request, ref: str, repo: str) -> Response:
        """Copy: ``?from=<project>/<repository>:<tag>`` or ``…@<digest>``."""
        at = scope(self, request, ref, "artifact:create")
        source = request.query_params.get("from", "")
        if "@" in source:
            source_name, reference = source.split("@", 1)
        else:
            source_name, _, reference = source.rpartition(":")
        if not source_name or not reference:
            raise Invalid("from must be <project>/<repository>:<tag> or @<digest>")
        source_project = access.project_for_repository(source_name)
        if source_project is None or not access.can(at.actor, "repository", "pull", source_project):
            raise NotFound(source_name)
        source_repo = Repository.objects.filter(name=source_name).first()
        if source_repo is None:
            raise NotFound(source_name)
        target = _repo_name(at.project, repo)
        copied = svc.artifact_copy(
            actor=at.actor, source=source_repo, reference=reference, target_name=target
        )
        return created(
            f"/api/v2.0/projects/{at.project.name}/repositories/{repo}/artifacts/{copied.digest}"
        )


class ArtifactDetail(HarborView):
    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "artifact:read", repo)
        manifest = svc.artifact_get(repository=at.repo, reference=reference)
        immutable = immutability.matcher_for(at.project)
        with_label = query_bool(request, "with_label") is True
        return Response(render_artifact(manifest, at.repo, True, immutable, with_label))

    def delete(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "artifact:delete", repo)
        svc.artifact_delete(actor=at.actor, repository=at.repo, reference=reference)
        return Response(status=200)


class TagList(HarborView):
    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "tag:list", repo)
        manifest = svc.artifact_get(repository=at.repo, reference=reference)
        immutable = immutability.matcher_for(at.project)
        return paginate(
            request,
            manifest.tags.order_by("name"),
            lambda page: [render_tag(t, at.repo, manifest, immutable) for t in page],
        )

    def post(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "tag:create", repo)
        name = str(body(request).get("name", ""))
        svc.tag_create(actor=at.actor, repository=at.repo, reference=reference, name=name)
        return created(
            f"/api/v2.0/projects/{at.project.name}/repositories/{repo}/artifacts/"
            f"{reference}/tags/{name}"
        )


class TagDetail(HarborView):
    def delete(self, request: Request, ref: str, repo: str, reference: str, tag: str) -> Response:
        at = scope(self, request, ref, "tag:delete", repo)
        svc.tag_delete(actor=at.actor, repository=at.repo, reference=reference, name=tag)
        return Response(status=200)


class ImmutableRuleList(HarborView):
    """Harbor's ``/projects/{project_name_or_id}/immutabletagrules``: project
    admins and maintainers."""

    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        rows = immutability.rule_list(actor=actor, project=project_from(request, ref, actor))
        return paginate(request, rows, lambda page: [immutability.render(r) for r in page])

    def post(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        rule = immutability.rule_create(actor=actor, project=project, data=body(request))
        return created(f"/api/v2.0/projects/{project.name}/immutabletagrules/{rule.pk}")


class ImmutableRuleDetail(HarborView):
    def put(self, request: Request, ref: str, rule_id: int) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        immutability.rule_update(actor=actor, project=project, rule_id=rule_id, data=body(request))
        return Response(status=200)

    def delete(self, request: Request, ref: str, rule_id: int) -> Response:
        actor = self.actor(request)
        immutability.rule_delete(
            actor=actor, project=project_from(request, ref, actor), rule_id=rule_id
        )
        return Response(status=200)
