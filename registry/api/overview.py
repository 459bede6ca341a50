"""Overviews of content: statistics, search, quotas (usage and hard limits)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.api.base import HarborView
from accounts.api.paging import paginate
from accounts.api.params import Id, Text, fields, query
from accounts.api.render import ts
from accounts.errors import NotFound
from accounts.models import Project
from registry.models import Blob, Repository
from registry.services import quotas
from registry.storage import capacity


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


def render_quota(project: Project, used: int) -> dict[str, Any]:
    """Harbor's Quota: its id is the project's."""
    row = quotas.quota_row(project)
    return {
        "id": project.pk,
        "ref": {
            "id": project.pk,
            "name": project.name,
            "owner_name": project.owner.username if project.owner else "",
        },
        "hard": quotas.hard_limits(project),
        "used": {"storage": used},
        "creation_time": ts(row.created_at if row else project.created_at),
        "update_time": ts(row.updated_at if row else project.updated_at),
    }


class QuotaQuery(serializers.Serializer):
    reference = Text(required=False)
    reference_id = Id(required=False, allow_null=True)


class QuotaUpdate(serializers.Serializer):
    """Harbor's QuotaUpdateReq: ``{"hard": {"storage": <bytes or -1>}}``
    (checked by the service, with Harbor's messages)."""

    hard = serializers.JSONField(required=False, allow_null=True)


class QuotaList(HarborView):
    def get(self, request: Request) -> Response:
        asked = query(request, QuotaQuery)
        projects = quotas.quota_list(
            actor=self.actor(request),
            reference=asked.get("reference"),
            reference_id=asked.get("reference_id"),
        )
        used = quotas.usage(projects)
        return paginate(
            request, projects, lambda page: [render_quota(p, used.get(p.pk, 0)) for p in page]
        )


class QuotaDetail(HarborView):
    def get(self, request: Request, qid: int) -> Response:
        project = quotas.quota_get(actor=self.actor(request), quota_id=qid)
        return Response(render_quota(project, quotas.usage([project]).get(project.pk, 0)))

    def put(self, request: Request, qid: int) -> Response:
        hard = fields(request, QuotaUpdate).get("hard")
        quotas.quota_update(actor=self.actor(request), quota_id=qid, hard=hard)
        return Response(status=200)


class Volumes(HarborView):
    """Harbor's ``/systeminfo/volumes``: the blob disk's size and free space,
    for system administrators; 404 on object storage (no disk to measure)."""

    def get(self, request: Request) -> Response:
        access.require_system(self.actor(request), "system-volumes", "read")
        measured = capacity()
        if measured is None:
            raise NotFound(message="blob storage is not a local disk")
        total, free = measured
        return Response({"storage": [{"total": total, "free": free}]})
