"""Read-only overviews of content: statistics, search and quotas (usage)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.api.base import HarborView, int_id
from accounts.api.paging import paginate
from accounts.api.render import ts
from accounts.errors import Denied, NotFound
from accounts.models import Project
from registry.models import Blob, Repository


class Statistics(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        projects = access.visible_projects(actor)
        counts = Project.objects.filter(pk__in=projects.values("pk")).aggregate(
            n_public=Count("pk", filter=Q(public=True)),
            n_private=Count("pk", filter=Q(public=False)),
        )
        repos = Repository.objects.filter(project__in=projects).aggregate(
            n_public=Count("pk", filter=Q(project__public=True)),
            n_private=Count("pk", filter=Q(project__public=False)),
        )
        body: dict[str, Any] = {
            "private_project_count": counts["n_private"],
            "public_project_count": counts["n_public"],
            "total_project_count": counts["n_private"] + counts["n_public"],
            "private_repo_count": repos["n_private"],
            "public_repo_count": repos["n_public"],
            "total_repo_count": repos["n_private"] + repos["n_public"],
        }
        if actor.sysadmin:
            body["total_storage_consumption"] = Blob.objects.aggregate(s=Sum("size"))["s"] or 0
        return Response(body)


class Search(HarborView):
    """Projects and repositories matching ``q`` that the caller may see (C28)."""

    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        term = request.query_params.get("q", "")
        projects = access.visible_projects(actor)
        found = projects.filter(name__icontains=term).order_by("name")[:100]
        repos = (
            Repository.objects.filter(project__in=projects, name__icontains=term)
            .select_related("project")
            .annotate(n=Count("manifests"))
            .order_by("name")[:100]
        )
        return Response(
            {
                "project": [
                    {
                        "project_id": p.pk,
                        "name": p.name,
                        "metadata": {"public": "true" if p.public else "false"},
                    }
                    for p in found
                ],
                "repository": [
                    {
                        "project_id": r.project_id,
                        "project_name": r.project.name,
                        "project_public": r.project.public,
                        "repository_name": r.name,
                        "pull_count": r.pull_count,
                        "artifact_count": r.n,
                    }
                    for r in repos
                ],
            }
        )


def _usage(projects: Any) -> dict[int, int]:
    """Bytes stored per project: each blob counted once per project."""
    rows = (
        Blob.objects.filter(repository_links__repository__project__in=projects)
        .values("repository_links__repository__project_id", "pk", "size")
        .distinct()
    )
    usage: dict[int, int] = {}
    for row in rows:
        pid = row["repository_links__repository__project_id"]
        usage[pid] = usage.get(pid, 0) + row["size"]
    return usage


def _quota(project: Project, used: int) -> dict[str, Any]:
    return {
        "id": project.pk,
        "ref": {
            "id": project.pk,
            "name": project.name,
            "owner_name": project.owner.username if project.owner else "",
        },
        "hard": {"storage": -1},
        "used": {"storage": used},
        "creation_time": ts(project.created_at),
        "update_time": ts(project.updated_at),
    }


class QuotaList(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if not access.system_can(actor, "quota", "list"):
            raise Denied("listing quotas needs system quota:list")
        projects = Project.objects.select_related("owner").order_by("name")
        # Harbor's filters: quotas belong to projects (reference=project), one
        # project's by reference_id (what harbor-cli and the go-client ask).
        reference = request.query_params.get("reference")
        if reference not in (None, "", "project"):
            projects = projects.none()
        reference_id = request.query_params.get("reference_id")
        if reference_id:
            projects = projects.filter(pk=int_id(reference_id))
        usage = _usage(projects)
        return paginate(
            request, projects, lambda page: [_quota(p, usage.get(p.pk, 0)) for p in page]
        )


class QuotaDetail(HarborView):
    def get(self, request: Request, qid: int) -> Response:
        actor = self.actor(request)
        project = access.visible_projects(actor).filter(pk=qid).select_related("owner").first()
        if project is None:
            raise NotFound(str(qid))
        access.require(actor, "quota", "read", project)
        return Response(_quota(project, _usage([project]).get(project.pk, 0)))
