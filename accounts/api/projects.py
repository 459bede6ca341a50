from __future__ import annotations

from django.db.models import Count
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.api import render
from accounts.api.base import HarborView, created, project_from
from accounts.api.paging import apply_sort, paginate, parse_q
from accounts.api.params import Flag, Id, Integer, Text, fields, query, strings
from accounts.errors import Invalid, NotFound
from accounts.services import projects as svc
from kit import params

Q_FIELDS = {"name": "name", "public": "public", "owner": "owner__username"}
SORT_FIELDS = {"name": "name", "creation_time": "created_at", "update_time": "updated_at"}


class ProjectQuery(serializers.Serializer):
    """listProjects' own parameters (paging, ``q`` and ``sort`` are read apart)."""

    name = Text(required=False)
    public = Flag(required=False)
    owner = Text(required=False)
    with_detail = Flag(required=False)


class ProjectReq(serializers.Serializer):
    """Harbor's ProjectReq. ``metadata`` values are strings ("true", not true);
    ``public`` is the deprecated flag (metadata's wins). ``storage_limit``
    (bytes, -1 unlimited) is honoured for system administrators, as in Harbor;
    ``registry_id`` and ``cve_allowlist`` are checked and not used: Berth has no
    proxy caches or scanners yet."""

    project_name = Text(required=False, max_length=255)
    public = Flag(required=False, allow_null=True)
    metadata = serializers.DictField(child=Text(allow_null=True), required=False, allow_null=True)
    storage_limit = Integer(required=False, allow_null=True, minimum=-1, maximum=2**63 - 1)
    registry_id = Id(required=False, allow_null=True)
    cve_allowlist = serializers.DictField(required=False, allow_null=True)


class ProjectList(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        rows = access.visible_projects(actor).select_related("owner")
        filters = parse_q(request, Q_FIELDS)
        if "public" in filters:
            filters["public"] = params.boolean(filters["public"], name="public")
        given = query(request, ProjectQuery)
        if given.get("name"):
            filters["name__icontains"] = given["name"]
        if given.get("owner"):
            filters["owner__username"] = given["owner"]
        if "public" in given:
            filters["public"] = given["public"]
        rows = apply_sort(
            rows.filter(**filters).annotate(n_repos=Count("repositories", distinct=True)),
            request,
            SORT_FIELDS,
            default="name",
        )
        roles = access.memberships(actor)

        def rendered(page):  # type: ignore[no-untyped-def]
            return [render.project(p, role=roles.get(p.pk), repo_count=p.n_repos) for p in page]

        return paginate(request, rows, rendered)

    def post(self, request: Request) -> Response:
        data = fields(request, ProjectReq)
        project = svc.project_create(
            actor=self.actor(request),
            name=data.get("project_name", ""),
            public=data.get("public"),
            metadata=_given(data.get("metadata")),
            storage_limit=data.get("storage_limit"),
        )
        return created(f"/api/v2.0/projects/{project.pk}")

    def head(self, request: Request) -> Response:
        name = request.query_params.get("project_name", "")
        exists = access.visible_projects(self.actor(request)).filter(name=name).exists()
        if not exists:
            raise NotFound(name)
        return Response(status=200)


def _given(metadata: dict[str, str | None] | None) -> dict[str, str] | None:
    """Metadata without its null values (null: not given, as in Harbor)."""
    if metadata is None:
        return None
    return {key: value for key, value in metadata.items() if value is not None}


class ProjectDetail(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        return Response(
            render.project(
                project,
                role=access.member_role(actor, project),
                repo_count=project.repositories.count(),
            )
        )

    def put(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        data = fields(request, ProjectReq)
        svc.project_update(
            actor=actor,
            project=project_from(request, ref, actor),
            metadata=_given(data.get("metadata")),
            public=data.get("public"),
        )
        return Response(status=200)

    def delete(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        svc.project_delete(actor=actor, project=project_from(request, ref, actor))
        return Response(status=200)


class ProjectDeletable(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        access.require(actor, "project", "delete", project)
        ok, why = svc.project_deletable(project=project)
        return Response({"deletable": ok, "message": why})


class ProjectSummary(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        return Response(svc.project_summary(actor=actor, project=project_from(request, ref, actor)))


class MemberUser(serializers.Serializer):
    user_id = Id(required=False)
    username = Text(required=False)


class MemberGroup(serializers.Serializer):
    """Harbor's UserGroup as a member: by ``id``, an LDAP group's
    ``ldap_group_dn``, or ``group_name`` with ``group_type``."""

    id = Integer(required=False, allow_null=True)
    group_name = Text(required=False, allow_null=True)
    group_type = Integer(required=False, allow_null=True)
    ldap_group_dn = Text(required=False, allow_null=True)


class MemberBody(serializers.Serializer):
    """Harbor's ProjectMember: a user or a group."""

    role_id = Integer(required=False)
    member_user = MemberUser(required=False)
    member_group = MemberGroup(required=False, allow_null=True)


class RoleBody(serializers.Serializer):
    role_id = Integer(required=False)


class MemberList(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        rows = svc.member_list(
            actor=actor, project=project, entityname=request.query_params.get("entityname", "")
        )
        return paginate(request, rows, lambda page: [render.member(m) for m in page])

    def post(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        data = fields(request, MemberBody)
        user = data.get("member_user") or {}
        group = {k: v for k, v in (data.get("member_group") or {}).items() if v is not None}
        if group and not user:
            member = svc.member_add_group(
                actor=actor, project=project, group=group, role_id=data.get("role_id")
            )
        else:
            member = svc.member_add(
                actor=actor,
                project=project,
                user_id=user.get("user_id"),
                username=user.get("username"),
                role_id=data.get("role_id"),
            )
        return created(f"/api/v2.0/projects/{project.pk}/members/{member.pk}")


class MemberDetail(HarborView):
    def get(self, request: Request, ref: str, mid: int) -> Response:
        actor = self.actor(request)
        member = svc.member_get(
            actor=actor, project=project_from(request, ref, actor), member_id=mid
        )
        return Response(render.member(member))

    def put(self, request: Request, ref: str, mid: int) -> Response:
        actor = self.actor(request)
        svc.member_update(
            actor=actor,
            project=project_from(request, ref, actor),
            member_id=mid,
            role_id=fields(request, RoleBody).get("role_id"),
        )
        return Response(status=200)

    def delete(self, request: Request, ref: str, mid: int) -> Response:
        actor = self.actor(request)
        svc.member_remove(actor=actor, project=project_from(request, ref, actor), member_id=mid)
        return Response(status=200)


class MetadataList(HarborView):
    def get(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        return Response(svc.metadata_read(actor=actor, project=project_from(request, ref, actor)))

    def post(self, request: Request, ref: str) -> Response:
        actor = self.actor(request)
        project = project_from(request, ref, actor)
        svc.metadata_set(actor=actor, project=project, values=strings(request), action="create")
        return Response(status=200)


class MetadataDetail(HarborView):
    def get(self, request: Request, ref: str, name: str) -> Response:
        actor = self.actor(request)
        values = svc.metadata_read(actor=actor, project=project_from(request, ref, actor))
        if name not in values:
            raise NotFound(name)
        return Response({name: values[name]})

    def put(self, request: Request, ref: str, name: str) -> Response:
        actor = self.actor(request)
        data = strings(request)
        if set(data) != {name}:
            raise Invalid(f"the body must be {{{name!r}: value}}")
        svc.metadata_set(
            actor=actor, project=project_from(request, ref, actor), values=data, action="update"
        )
        return Response(status=200)

    def delete(self, request: Request, ref: str, name: str) -> Response:
        actor = self.actor(request)
        svc.metadata_delete(actor=actor, project=project_from(request, ref, actor), name=name)
        return Response(status=200)
