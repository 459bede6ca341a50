"""Harbor's content API: repositories, artifacts and tags of a project."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from django.db.models import Count
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.access import Actor
from accounts.api.base import HarborView, body, created
from accounts.api.paging import apply_sort, paginate, parse_q
from accounts.api.render import ts
from accounts.errors import Invalid, NotFound
from accounts.services.projects import project_lookup
from audit.events import Operation, Resource
from audit.services import record
from registry.manifests import INDEX_TYPES
from registry.models import Manifest, Project, Repository
from registry.services import artifacts as svc
from registry.services import immutability

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
) -> dict[str, Any]:
    out = {
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
        out["tags"] = [
            {
                "id": tag.pk,
                "repository_id": repo.pk,
                "artifact_id": manifest.pk,
                "name": tag.name,
                "push_time": ts(tag.updated_at),
                "pull_time": ts(repo.last_pulled_at),
                "immutable": bool(immutable and immutable(repo.name, tag.name)),
            }
            for tag in manifest.tags.all()
        ]
    return out


class RepositoryList(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "repository", "list", project)
        rows = Repository.objects.filter(project=project, **parse_q(request, REPO_Q))
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
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "repository", "read", project)
        repository = _repository(actor, project, repo)
        return Response(render_repo(repository, repository.manifests.count()))

    def put(self, request: Request, ref: str, repo: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "repository", "update", project)
        repository = _repository(actor, project, repo)
        repository.description = str(body(request).get("description", ""))
        repository.save(update_fields=["description", "updated_at"])
        return Response(status=200)

    def delete(self, request: Request, ref: str, repo: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "repository", "delete", project)
        repository = _repository(actor, project, repo)
        svc.repository_delete(repository=repository)
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.REPOSITORY,
            resource=repository.name,
            project=project,
        )
        return Response(status=200)


class ArtifactList(HarborView):
    def get(self, request: Request, ref: str, repo: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "artifact", "list", project)
        repository = _repository(actor, project, repo)
        with_tag = request.query_params.get("with_tag", "true") != "false"
        immutable = immutability.matcher_for(project)
        return paginate(
            request,
            svc.artifacts_of(repository),
            lambda page: [render_artifact(m, repository, with_tag, immutable) for m in page],
        )

    def post(self, request: Request, ref: str, repo: str) -> Response:
        """Copy: ``?from=<project>/<repository>:<tag>`` or ``…@<digest>``."""
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "artifact", "create", project)
        source = request.query_params.get("from", "")
        if "@" in source:
            source_name, reference = source.split("@", 1)
        else:
            source_name, _, reference = source.rpartition(":")
        if not source_name or not reference:
            raise Invalid("from must be <project>/<repository>:<tag> or @<digest>")
        source_project = access.project_for_repository(source_name)
        if source_project is None or not access.can(actor, "repository", "pull", source_project):
            raise NotFound(source_name)
        source_repo = Repository.objects.filter(name=source_name).first()
        if source_repo is None:
            raise NotFound(source_name)
        target = _repo_name(project, repo)
        copied = svc.artifact_copy(source=source_repo, reference=reference, target_name=target)
        record(
            actor=actor,
            operation=Operation.CREATE,
            resource_type=Resource.ARTIFACT,
            resource=f"{target}@{copied.digest}",
            project=project,
            detail={"from": source},
        )
        return created(
            f"/api/v2.0/projects/{project.name}/repositories/{repo}/artifacts/{copied.digest}"
        )


class ArtifactDetail(HarborView):
    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "artifact", "read", project)
        repository = _repository(actor, project, repo)
        manifest = svc.artifact_get(repository=repository, reference=reference)
        immutable = immutability.matcher_for(project)
        return Response(render_artifact(manifest, repository, True, immutable))

    def delete(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "artifact", "delete", project)
        repository = _repository(actor, project, repo)
        manifest = svc.artifact_delete(repository=repository, reference=reference)
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.ARTIFACT,
            resource=f"{repository.name}@{manifest.digest}",
            project=project,
        )
        return Response(status=200)


class TagList(HarborView):
    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "tag", "list", project)
        repository = _repository(actor, project, repo)
        manifest = svc.artifact_get(repository=repository, reference=reference)
        tags = manifest.tags.order_by("name")
        immutable = immutability.matcher_for(project)
        return paginate(
            request,
            tags,
            lambda page: [
                {
                    "id": t.pk,
                    "repository_id": repository.pk,
                    "artifact_id": manifest.pk,
                    "name": t.name,
                    "push_time": ts(t.updated_at),
                    "pull_time": None,
                    "immutable": immutable(repository.name, t.name),
                }
                for t in page
            ],
        )

    def post(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "tag", "create", project)
        repository = _repository(actor, project, repo)
        name = str(body(request).get("name", ""))
        svc.tag_create(repository=repository, reference=reference, name=name)
        record(
            actor=actor,
            operation=Operation.CREATE,
            resource_type=Resource.TAG,
            resource=f"{repository.name}:{name}",
            project=project,
        )
        return created(
            f"/api/v2.0/projects/{project.name}/repositories/{repo}/artifacts/"
            f"{reference}/tags/{name}"
        )


class TagDetail(HarborView):
    def delete(self, request: Request, ref: str, repo: str, reference: str, tag: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        access.require(actor, "tag", "delete", project)
        repository = _repository(actor, project, repo)
        svc.tag_delete(repository=repository, reference=reference, name=tag)
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.TAG,
            resource=f"{repository.name}:{tag}",
            project=project,
        )
        return Response(status=200)


class ImmutableRuleList(HarborView):
    """Harbor's ``/projects/{p}/immutabletagrules``: project admins and maintainers."""

    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        rows = immutability.rule_list(actor=actor, project=_project(actor, ref))
        return paginate(request, rows, lambda page: [immutability.render(r) for r in page])

    def post(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        rule = immutability.rule_create(actor=actor, project=project, data=body(request))
        return created(f"/api/v2.0/projects/{project.name}/immutabletagrules/{rule.pk}")


class ImmutableRuleDetail(HarborView):
    def put(self, request: Request, ref: str, rule_id: int) -> Response:
        actor = self.actor(request)
        project = _project(actor, ref)
        immutability.rule_update(actor=actor, project=project, rule_id=rule_id, data=body(request))
        return Response(status=200)

    def delete(self, request: Request, ref: str, rule_id: int) -> Response:
        actor = self.actor(request)
        immutability.rule_delete(actor=actor, project=_project(actor, ref), rule_id=rule_id)
        return Response(status=200)
