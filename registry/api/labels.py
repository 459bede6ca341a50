"""Harbor's label API: ``/labels`` (global and project labels) and
``…/artifacts/{reference}/labels`` (attach and detach). The rules are in
``registry.services.labels``; artifacts show their labels with ``with_label``
(``registry/api/content.py``)."""

from __future__ import annotations

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import HarborView, created
from accounts.api.paging import apply_sort, paginate, parse_q
from accounts.api.params import Id, Integer, Text, fields, query
from registry.api.content import scope
from registry.services import labels as svc

Q_FIELDS = {"name": "name"}
SORT = {"id": "id", "name": "name", "creation_time": "created_at", "update_time": "updated_at"}


class ListQuery(serializers.Serializer):
    scope = Text(required=False, allow_null=True)
    project_id = Integer(required=False, allow_null=True)
    name = Text(required=False, allow_null=True)


class LabelChange(serializers.Serializer):
    """What ``PUT`` changes of Harbor's ``Label`` (``id``, ``scope``,
    ``project_id`` and the times are ignored there)."""

    name = Text(required=False, allow_null=True)
    description = Text(required=False, allow_null=True)
    color = Text(required=False, allow_null=True)


class LabelBody(LabelChange):
    """Harbor's ``Label`` as ``POST`` takes it."""

    scope = Text(required=False, allow_null=True)
    project_id = Integer(required=False, allow_null=True)


class LabelRef(serializers.Serializer):
    """What ``addLabel`` needs of the ``Label`` it is sent: its id."""

    id = Id()


class LabelList(HarborView):
    def get(self, request: Request) -> Response:
        rows = svc.label_list(actor=self.actor(request), **query(request, ListQuery))
        rows = rows.filter(**parse_q(request, Q_FIELDS))
        rows = apply_sort(rows, request, SORT, "name")
        return paginate(request, rows, lambda page: [svc.render(label) for label in page])

    def post(self, request: Request) -> Response:
        label = svc.label_create(actor=self.actor(request), **fields(request, LabelBody))
        return created(f"/api/v2.0/labels/{label.pk}")


class LabelDetail(HarborView):
    def get(self, request: Request, label_id: int) -> Response:
        return Response(svc.render(svc.label_get(actor=self.actor(request), label_id=label_id)))

    def put(self, request: Request, label_id: int) -> Response:
        svc.label_update(
            actor=self.actor(request), label_id=label_id, **fields(request, LabelChange)
        )
        return Response(status=200)

    def delete(self, request: Request, label_id: int) -> Response:
        svc.label_delete(actor=self.actor(request), label_id=label_id)
        return Response(status=200)


class ArtifactLabels(HarborView):
    def post(self, request: Request, ref: str, repo: str, reference: str) -> Response:
        # 404 to whoever may not see the project; the service decides the rest.
        at = scope(self, request, ref, "artifact:read", repo)
        svc.artifact_label_add(
            actor=at.actor,
            repository=at.repo,
            reference=reference,
            label_id=fields(request, LabelRef)["id"],
        )
        return Response(status=200)


class ArtifactLabel(HarborView):
    def delete(
        self, request: Request, ref: str, repo: str, reference: str, label_id: int
    ) -> Response:
        at = scope(self, request, ref, "artifact:read", repo)
        svc.artifact_label_remove(
            actor=at.actor, repository=at.repo, reference=reference, label_id=label_id
        )
        return Response(status=200)


ARTIFACT = "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>"

# Composed first into registry/api/urls.py: a repository route's <path:repo>
# would take these paths whole.
urlpatterns = [
    path("labels", LabelList.as_view()),
    path("labels/<id:label_id>", LabelDetail.as_view()),
    path(f"{ARTIFACT}/labels", ArtifactLabels.as_view()),
    path(f"{ARTIFACT}/labels/<id:label_id>", ArtifactLabel.as_view()),
]
