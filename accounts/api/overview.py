"""Read-only overviews of access: configurations, the permission pool and the
caller's own permissions. Content overviews (statistics, search, quotas) are
registry's (registry/api/overview.py)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.api.base import HarborView
from accounts.api.paging import query_bool
from accounts.api.params import Closed, Flag, Integer, Text, fields
from accounts.errors import Denied, Invalid, NotFound, Unauthenticated
from accounts.rbac import PROJECT_RESOURCES, SYSTEM_PERMISSIONS
from accounts.services import config
from kit import params


def _setting(kind: type) -> serializers.Field:
    if kind is bool:
        return Flag(required=False)
    if kind is int:
        return Integer(required=False, minimum=-(2**63))
    return Text(required=False)


# Harbor's Configurations, each key with its type; any other key is a 400.
ConfigurationsBody = type(
    "ConfigurationsBody",
    (Closed,),
    {key: _setting(kind) for key, kind in config.HARBOR_TYPES.items()},
)


class Configurations(HarborView):
    """Harbor's whole configuration shape. Self-registration and the
    project-creation restriction are editable (PUT); Harbor's other keys are
    accepted and ignored (accounts/services/config.py, docs/configuration.md)."""

    def get(self, request: Request) -> Response:
        if not self.actor(request).sysadmin:
            raise Denied("configurations are for system administrators")
        return Response(config.harbor_view())

    def put(self, request: Request) -> Response:
        actor = self.actor(request)
        if not actor.sysadmin:
            raise Denied("configurations are for system administrators")
        config.update(actor=actor, values=fields(request, ConfigurationsBody))
        return Response(status=200)


class PermissionPool(HarborView):
    """What a robot may be granted: system and project resources with actions."""

    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if not actor.authenticated:
            raise Unauthenticated()

        def listing(pool: dict[str, frozenset[str]]) -> list[dict[str, str]]:
            return [{"resource": r, "action": a} for r in sorted(pool) for a in sorted(pool[r])]

        body = {"project": listing(PROJECT_RESOURCES)}
        if access.system_can(actor, "robot", "create"):
            body["system"] = listing(SYSTEM_PERMISSIONS)
        return Response(body)


class CurrentUserPermissions(HarborView):
    """``?scope=/project/<id>`` (or ``/``), ``relative=true`` drops the scope prefix."""

    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        if actor.kind != "user":
            raise Unauthenticated()
        scope = request.query_params.get("scope", "/")
        relative = query_bool(request, "relative") is True
        out = []
        if scope.startswith("/project/"):
            ref = scope.removeprefix("/project/").strip("/")
            key = params.identifier(ref)
            if key is None:
                raise Invalid("scope must be /project/<id>")
            project = access.visible_projects(actor).filter(pk=key).first()
            if project is None:
                raise NotFound(ref)
            for resource in sorted(PROJECT_RESOURCES):
                for action in sorted(access.project_actions(actor, project, resource)):
                    name = resource if relative else f"{scope}/{resource}"
                    out.append({"resource": name, "action": action})
        elif scope == "/":
            out.extend(
                {"resource": resource if relative else f"/{resource}", "action": action}
                for resource in sorted(SYSTEM_PERMISSIONS)
                for action in sorted(SYSTEM_PERMISSIONS[resource])
                if access.system_can(actor, resource, action)
            )
        else:
            raise Invalid("unknown scope")
        return Response(out)
