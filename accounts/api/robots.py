from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import render
from accounts.api.base import HarborView, created
from accounts.api.paging import paginate, parse_q
from accounts.api.params import Flag, Integer, Text, fields
from accounts.errors import Unauthenticated
from accounts.services import robots as svc
from kit import params

Q_FIELDS = {"Level": "level", "ProjectID": "project_id", "name": "name"}


class Access(serializers.Serializer):
    resource = Text()
    action = Text()
    effect = Text(required=False)


class Permission(serializers.Serializer):
    """Harbor's RobotPermission; what each may grant is the service's to check."""

    kind = Text()
    namespace = Text()
    access = serializers.ListField(child=Access())


class RobotChange(serializers.Serializer):
    """What ``PUT /robots/{id}`` reads of Harbor's Robot (the rest of its
    fields, sent back as GET gave them, are not read). ``duration`` in days:
    -1 (never expires) up to 1,000 years."""

    description = Text(required=False, allow_null=True)
    disable = Flag(required=False, allow_null=True)
    duration = Integer(required=False, allow_null=True, minimum=-1, maximum=365_000)
    permissions = serializers.ListField(child=Permission(), required=False, allow_null=True)


class RobotCreate(RobotChange):
    """Harbor's RobotCreate."""

    name = Text(required=False)
    level = Text(required=False)
    secret = Text(required=False, allow_null=True)


class RobotSec(serializers.Serializer):
    """``PATCH /robots/{id}``: a new secret, or none (a random one)."""

    secret = Text(required=False, allow_null=True)


class RobotList(HarborView):
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if not actor.authenticated:
            raise Unauthenticated()
        filters = parse_q(request, Q_FIELDS)
        project_id = filters.pop("project_id", None)
        level = filters.pop("level", None)
        rows = svc.robots_visible(
            actor=actor,
            project_id=None if project_id is None else params.integer(project_id, name="ProjectID"),
        )
        if level == "system":
            rows = rows.filter(project__isnull=True)
        elif level == "project":
            rows = rows.filter(project__isnull=False)
        if "name__icontains" in filters or "name" in filters:
            rows = rows.filter(**filters)
        return paginate(request, rows.order_by("id"), lambda page: [render.robot(r) for r in page])

    def post(self, request: Request) -> Response:
        data = fields(request, RobotCreate)
        robot, secret = svc.robot_create(
            actor=self.actor(request),
            name=data.get("name", ""),
            level=data.get("level", ""),
            permissions=data.get("permissions"),
            duration=data.get("duration", -1),
            description=data.get("description", ""),
            disable=data.get("disable", False),
            secret=data.get("secret"),
        )
        return created(
            f"/api/v2.0/robots/{robot.pk}",
            {
                "id": robot.pk,
                "name": robot.name,
                "secret": secret,
                "creation_time": render.ts(robot.created_at),
                "expires_at": int(robot.expires_at.timestamp()) if robot.expires_at else -1,
            },
        )


class RobotDetail(HarborView):
    def get(self, request: Request, rid: int) -> Response:
        return Response(render.robot(svc.robot_get(actor=self.actor(request), robot_id=rid)))

    def put(self, request: Request, rid: int) -> Response:
        data = fields(request, RobotChange)
        svc.robot_update(
            actor=self.actor(request),
            robot_id=rid,
            disable=data.get("disable"),
            description=data.get("description"),
            duration=data.get("duration"),
            permissions=data.get("permissions"),
        )
        return Response(status=200)

    def patch(self, request: Request, rid: int) -> Response:
        """Refresh the secret: a new random one, or the one given (``secret``)."""
        secret = svc.robot_refresh_secret(
            actor=self.actor(request), robot_id=rid, secret=fields(request, RobotSec).get("secret")
        )
        return Response({"secret": secret})

    def delete(self, request: Request, rid: int) -> Response:
        svc.robot_delete(actor=self.actor(request), robot_id=rid)
        return Response(status=200)
