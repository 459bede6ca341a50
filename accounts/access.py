"""The one authorization path: /v2, the token service, the API, the admin and the
portal all decide through these functions.

An ``Actor`` is who is calling: anonymous, a user or a robot. Project-scope
decisions combine the public-project grants, the caller's membership role and a
robot's explicit grants; system-scope decisions need a sysadmin or a system robot
granted the permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Member, Project
from accounts.rbac import ALL, PROJECT_PERMISSIONS, PUBLIC_PERMISSIONS
from kit.errors import Denied, NotFound


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str  # "project" | "system"
    namespace: str  # project name, "*" (every project) or "/" (system)
    resource: str
    action: str


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # "anonymous" | "user" | "robot"
    id: int | None = None
    name: str = "anonymous"
    sysadmin: bool = False
    grants: tuple[Grant, ...] = field(default=())
    robot_project_id: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Actor(kind="anonymous")


def robot_grants(permissions: list[dict[str, Any]]) -> tuple[Grant, ...]:
    grants = []
    for perm in permissions or []:
        kind = perm.get("kind", "project")
        namespace = perm.get("namespace", "/")
        for access in perm.get("access", []):
            if access.get("effect", "allow") == "deny":
                continue
            grants.append(
                Grant(kind, namespace, access.get("resource", ""), access.get("action", ""))
            )
    return tuple(grants)


def member_role(actor: Actor, project: Project) -> int | None:
    if actor.kind != "user":
        return None
    return (
        Member.objects.filter(project=project, user_id=actor.id)
        .values_list("role", flat=True)
        .first()
    )


def project_actions(actor: Actor, project: Project, resource: str) -> frozenset[str]:
    """Every action the actor may take on ``resource`` in ``project``."""
    if actor.sysadmin:
        return ALL
    actions: set[str] = set()
    if project.public:
        actions |= PUBLIC_PERMISSIONS.get(resource, frozenset())
    role = member_role(actor, project)
    if role is not None:
        actions |= PROJECT_PERMISSIONS[role].get(resource, frozenset())
    for grant in actor.grants:
        if (
            grant.kind == "project"
            and grant.namespace in (project.name, "*")
            and grant.resource in (resource, "*")
        ):
            actions |= ALL if grant.action == "*" else {grant.action}
    return frozenset(actions)


def can(actor: Actor, resource: str, action: str, project: Project) -> bool:
    return action in project_actions(actor, project, resource)


def require(actor: Actor, resource: str, action: str, project: Project) -> None:
    """Raise NotFound when the actor may not even see the project, Denied when it
    may see it but not do this."""
    actions = project_actions(actor, project, resource)
    if action in actions:
        return
    if not project_actions(actor, project, "project"):
        raise NotFound(project.name)
    raise Denied(f"{resource}:{action}")


def system_can(actor: Actor, resource: str, action: str) -> bool:
    if actor.sysadmin:
        return True
    return any(
        g.kind == "system" and g.resource in (resource, "*") and g.action in (action, "*")
        for g in actor.grants
    )


def visible_projects(actor: Actor) -> QuerySet[Project]:
    """Projects the actor may know exist: one query, usable as a subquery."""
    projects = Project.objects.all()
    if actor.sysadmin:
        return projects
    visible = Q(public=True)
    if actor.kind == "user":
        visible |= Q(members__user_id=actor.id)
    if actor.kind == "robot":
        namespaces = {g.namespace for g in actor.grants if g.kind == "project"}
        if "*" in namespaces:
            return projects
        visible |= Q(name__in=namespaces)
    return projects.filter(visible).distinct()


def project_for_repository(name: str) -> Project | None:
    """The project a repository name lives in: its first component (and there
    must be more than one component)."""
    head, sep, rest = name.partition("/")
    if not sep or not rest:
        return None
    return Project.objects.filter(name=head).first()
