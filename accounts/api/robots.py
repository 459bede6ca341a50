from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import render
from accounts.api.base import HarborView, body, created
from accounts.api.paging import paginate, parse_q
from accounts.api.params import Integer, fields
from accounts.errors import Unauthenticated
from accounts.services import robots as svc
from kit import params

Q_FIELDS = {"Level": "level", "ProjectID": "project_id", "name": "name"}


class Term(serializers.Serializer):
    """A robot's ``duration`` in days: -1 (never expires) up to 1,000 years."""

    duration = Integer(required=False, minimum=-1, maximum=365_000)


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
        data = body(request)
        robot, secret = svc.robot_create(
            actor=self.actor(request),
            name=data.get("name", ""),
            level=data.get("level", ""),
            permissions=data.get("permissions"),
            duration=fields(request, Term).get("duration", -1),
            description=data.get("description", "") or "",
            disable=bool(data.get("disable", False)),
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
        data = body(request)
        svc.robot_update(
            actor=self.actor(request),
            robot_id=rid,
            disable=data.get("disable"),
            description=data.get("description"),
            duration=fields(request, Term).get("duration"),
            permissions=data.get("permissions"),
        )
        return Response(status=200)

    def patch(self, request: Request, rid: int) -> Response:
        """Refresh the secret: a new random one, or the one given (``secret``)."""
        secret = svc.robot_refresh_secret(
            actor=self.actor(request), robot_id=rid, secret=body(request).get("secret")
        )
        return Response({"secret": secret})

    def delete(self, request: Request, rid: int) -> Response:
        svc.robot_delete(actor=self.actor(request), robot_id=rid)
        return Response(status=200)
