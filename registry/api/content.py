"""Harbor's content API: repositories, artifacts and tags of a project."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.access import Actor
from accounts.api.base import HarborView, body, created, project_from
from accounts.api.paging import apply_sort, paginate, parse_q, q_lookups, query_q
from accounts.api.params import Flag, query
from accounts.api.render import ts
from accounts.errors import Invalid, NotFound
from accounts.models import Project
from accounts.services.projects import project_lookup
from registry.manifests import INDEX_TYPES
from registry.models import Manifest, Repository, Tag
from registry.services import accessories, additions, immutability
from registry.services import artifacts as svc

REPO_Q = {"name": "name"}
# Harbor's artifact filters (q=) besides ``tags``, and its sort keys.
ARTIFACT_Q = {
    "digest": "digest",
    "media_type": "artifact_type",
    "artifact_type": "artifact_type",
    "manifest_media_type": "media_type",
    "repository_name": "repository__name",
}
ARTIFACT_SORT = {"push_time": "created_at", "digest": "digest", "size": "size"}
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


def _type(manifest: Manifest) -> str:
    if manifest.media_type in INDEX_TYPES or manifest.artifact_type in additions.IMAGE_CONFIGS:
        return "IMAGE"
    if manifest.artifact_type == additions.HELM_CONFIG:
        return "CHART"
    return "UNKNOWN"


def _artifact_path(repo: Repository, manifest: Manifest) -> str:
    # The repository within its project, escaped twice as Harbor's links are.
    within = repo.name.split("/", 1)[1]
    return (
        f"/api/v2.0/projects/{repo.name.split('/', 1)[0]}/repositories/"
        f"{quote(quote(within, safe=''), safe='')}/artifacts/{manifest.digest}"
    )


def render_accessory(accessory: Manifest, subject: Manifest, repo: Repository) -> dict[str, Any]:
    """Harbor's Accessory (Berth's accessory is the referrer itself: one id)."""
    return {
        "id": accessory.pk,
        "artifact_id": accessory.pk,
        "subject_artifact_id": subject.pk,
        "subject_artifact_digest": subject.digest,
        "subject_artifact_repo": repo.name,
        "size": accessory.size,
        "digest": accessory.digest,
        "type": accessories.accessory_type(accessory),
        "icon": "",
        "creation_time": ts(accessory.created_at),
    }


def render_artifact(
    manifest: Manifest,
    repo: Repository,
    with_tag: bool = True,
    immutable: immutability.Matcher | None = None,
    accessories_of: list[Manifest] | None = None,
) -> dict[str, Any]:
    """Harbor's Artifact; ``accessories`` when ``accessories_of`` is given."""
    out: dict[str, Any] = {
        "id": manifest.pk,
        "type": _type(manifest),
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
        "addition_links": {
            name: {"href": f"{_artifact_path(repo, manifest)}/additions/{name}", "absolute": False}
            for name in additions.available(manifest)
        },
    }
    if with_tag:
        out["tags"] = [render_tag(tag, repo, manifest, immutable) for tag in manifest.tags.all()]
    if accessories_of is not None:
        out["accessories"] = [render_accessory(a, manifest, repo) for a in accessories_of]
    return out


class ArtifactQuery(serializers.Serializer):
    """Harbor's artifact listing flags (others, such as with_label or
    with_scan_overview, change nothing here and are ignored)."""

    with_tag = Flag(required=False)
    with_accessory = Flag(required=False)
    latest_in_repository = Flag(required=False)


def artifacts_asked(request: Request, rows: QuerySet[Manifest]) -> QuerySet[Manifest]:
    """Harbor's ``q`` for artifacts (``tags=*``, ``tags=nil``, ``tags=~v``,
    ``tags=v``, and ARTIFACT_Q's fields), ``sort`` over ARTIFACT_SORT, and
    ``latest_in_repository`` (only with ``media_type`` or ``artifact_type`` in
    ``q``, as in Harbor): the newest matching artifact of each repository."""
    parts = [p.strip() for p in query_q(request).split(",") if p.strip()]
    tagged = [p.partition("=")[2] for p in parts if p.startswith("tags=")]
    lookups = q_lookups(",".join(p for p in parts if not p.startswith("tags=")), ARTIFACT_Q)
    rows = rows.filter(**lookups)
    for value in tagged:
        if value == "*":
            rows = rows.filter(tags__isnull=False)
        elif value == "nil":
            rows = rows.filter(tags__isnull=True)
        elif value.startswith("~"):
            rows = rows.filter(tags__name__icontains=value[1:])
        else:
            rows = rows.filter(tags__name=value)
    if tagged:
        rows = rows.filter(pk__in=rows.values("pk"))  # one row per artifact again
    typed = {"artifact_type", "media_type"} & {k.partition("__")[0] for k in lookups}
    if query(request, ArtifactQuery).get("latest_in_repository") and typed:
        newest = rows.filter(repository=OuterRef("repository")).order_by("-created_at", "-id")
        rows = rows.filter(pk=Subquery(newest.values("pk")[:1]))
    if not request.query_params.get("sort"):
        return rows.order_by("-created_at", "-id")
    return apply_sort(rows, request, ARTIFACT_SORT)


def artifact_page(
    request: Request, rows: QuerySet[Manifest], project: Project, repo: Repository | None = None
) -> Response:
    """A page of artifacts, rendered with the flags asked (a fixed number of
    queries per page: tags, accessories and repositories are fetched once)."""
    flags = query(request, ArtifactQuery)
    with_tag = flags.get("with_tag") is not False
    immutable = immutability.matcher_for(project)

    def render(page: Iterable[Manifest]) -> list[dict[str, Any]]:
        page = list(page)
        found = accessories.accessories_for(page) if flags.get("with_accessory") else None
        return [
            render_artifact(
                m,
                repo or m.repository,
                with_tag,
                immutable,
                found[m.pk] if found is not None else None,
            )
            for m in page
        ]

    return paginate(request, artifacts_asked(request, rows), render)


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
        return artifact_page(request, svc.artifacts_of(at.repo), at.project, at.repo)

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


class ProjectArtifactList(HarborView):
    """Harbor's ``/projects/{project_name_or_id}/artifacts``: every artifact of
    the project's repositories, with the repository list's query parameters."""

    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        access.require(actor, "artifact", "list", project)
        return artifact_page(request, svc.artifacts_of_project(project), project)


class ArtifactDetail(HarborView):
    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "artifact:read", repo)
        manifest = svc.artifact_get(repository=at.repo, reference=reference)
        immutable = immutability.matcher_for(at.project)
        with_accessory = query(request, ArtifactQuery).get("with_accessory")
        found = list(accessories.accessories_of(manifest)) if with_accessory else None
        return Response(render_artifact(manifest, at.repo, True, immutable, found))

    def delete(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "artifact:delete", repo)
        svc.artifact_delete(actor=at.actor, repository=at.repo, reference=reference)
        return Response(status=200)


class AccessoryList(HarborView):
    """Harbor's ``…/artifacts/{reference}/accessories``: the artifacts whose
    ``subject`` is this one; ``q=type=<accessory type>`` filters."""

    def get(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        at = scope(self, request, ref, "accessory:list", repo)
        manifest = svc.artifact_get(repository=at.repo, reference=reference)
        kind = parse_q(request, {"type": "type"}).get("type")
        rows = accessories.accessories_of(manifest, kind=kind)
        return paginate(
            request, rows, lambda page: [render_accessory(a, manifest, at.repo) for a in page]
        )


class AdditionDetail(HarborView):
    """Harbor's ``…/artifacts/{reference}/additions/{addition}``: what Berth can
    derive from the stored blobs (registry/services/additions.py), else 404."""

    def get(
        self, request: Request, ref: str, repo: str, reference: str, addition: str
    ) -> HttpResponse:
        at = scope(self, request, ref, "artifact-addition:read", repo)
        manifest = svc.artifact_get(repository=at.repo, reference=reference)
        found = additions.addition_get(manifest=manifest, name=addition)
        return HttpResponse(found.content, content_type=found.content_type)


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
