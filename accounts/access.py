"""The policy module: every access decision — /v2, the token service, the API,
the admin, the portal and jobs — is made by these functions, and only this
module reads the role table (``accounts.rbac``).

An ``Actor`` is who is calling (``accounts.identity`` turns a request into one):
anonymous, a user or a robot. Project-scope decisions combine the public-project
grants, the caller's membership role and a robot's explicit grants; system-scope
decisions need a sysadmin or a system robot granted the permission.

- ``can`` / ``require``: one object — may the actor do ``resource:action`` in
  ``project``? (``require`` raises NotFound when the project is not even
  visible, Denied otherwise.)
- ``restrict``: a queryset of projects, or of any model with a path to its
  project, cut to the rows where the actor may do ``resource:action``
  (NetBox's ``restrict()``); ``visible_projects`` is the projects it may see.
- ``repository_actions`` / ``grant_scopes``: repositories by name (the project
  is the name's first component, ``split_repository``), and the token
  service's requested ∩ permitted.
- ``system_can`` / ``require_system``: system scope; ``memberships``: a
  user's roles (the admin's scope).
- ``roles_remembered``: within it (one portal request), a user's role in a
  project is read from the database once, however many decisions ask.
- Groups are members: a user's role in a project is the highest of their own
  membership's and those of the groups they are in (``member_rows``, one
  subquery; every decision above goes through it).
- ``require_holds``: an actor acting on another principal (creating, changing,
  refreshing or deleting a robot; access tokens and SSO identities next) must
  itself hold every permission that principal has (Harbor's rule).
- A user signed in with a scoped personal access token carries a ``Limit``:
  its grants *cut* the user's current rights instead of adding to them (the
  token may do what both it names and the user may do; public projects stay
  readable as they are to anyone). Every decision here honours it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from accounts.models import GroupMembership, Member, Project
from accounts.rbac import ALL, PROJECT_PERMISSIONS, PUBLIC_PERMISSIONS, highest_role
from kit.errors import Denied, NotFound, Unauthenticated

M = TypeVar("M", bound=Model)

# The actions a registry token can carry for a repository.
REPOSITORY_ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True, slots=True)
class Grant:
    kind: str  # "project" | "system"
    namespace: str  # project name, "*" (every project) or "/" (system)
    resource: str
    action: str


@dataclass(frozen=True, slots=True)
class Limit:
    """A scoped personal access token's permissions: its user may act only
    where these grants say, and only as far as the user may itself
    (``sysadmin``: the user's own flag; the actor's is False)."""

    grants: tuple[Grant, ...]
    sysadmin: bool = False


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # "anonymous" | "user" | "robot"
    id: int | None = None
    name: str = "anonymous"
    sysadmin: bool = False
    grants: tuple[Grant, ...] = field(default=())
    robot_project_id: int | None = None
    # A user signed in with a personal access token: the token's id (its
    # revocation ends the tokens issued from it), and its Limit when scoped.
    token_id: int | None = None
    limit: Limit | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Actor(kind="anonymous")
# Berth itself, for what no person or robot asked for (a scheduled or
# event-based replication run): the audit trail names it "system".
SYSTEM = Actor(kind="system", name="system", sysadmin=True)


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


# (user id, project id) -> role, while ``roles_remembered`` is in force.
_remembered_roles: ContextVar[dict[tuple[int | None, int], int | None] | None] = ContextVar(
    "berth_remembered_roles", default=None
)


@contextmanager
def roles_remembered() -> Iterator[None]:
    """Within: ``member_role`` reads each (user, project) role once. For one
    portal request (portal/middleware.py), where a page asks a dozen decisions
    of the same project; a membership change inside is seen after
    ``forget_roles`` (the portal's writes answer with a redirect)."""
    token = _remembered_roles.set({})
    try:
        yield
    finally:
        _remembered_roles.reset(token)


def forget_roles() -> None:
    """Drop the roles remembered so far (after a membership change)."""
    memo = _remembered_roles.get()
    if memo is not None:
        memo.clear()


def member_rows(user_id: int | None) -> QuerySet[Member]:
    """The memberships that speak for a user: their own and their groups' (no
    query until used; the groups are a subquery)."""
    groups = GroupMembership.objects.filter(user_id=user_id).values("group_id")
    return Member.objects.filter(Q(user_id=user_id) | Q(group_id__in=groups))


def member_role(actor: Actor, project: Project) -> int | None:
    """The actor's role in the project: the highest of its own and its groups'
    (one query)."""
    if actor.kind != "user":
        return None
    memo = _remembered_roles.get()
    key = (actor.id, project.pk)
    if memo is not None and key in memo:
        return memo[key]
    roles = member_rows(actor.id).filter(project=project).values_list("role", flat=True)
    role = highest_role(roles)
    if memo is not None:
        memo[key] = role
    return role


def _granted(grants: Iterable[Grant], project: Project, resource: str) -> frozenset[str]:
    """The actions project grants name on ``resource`` in ``project``."""
    actions: set[str] = set()
    for grant in grants:
        if (
            grant.kind == "project"
            and grant.namespace in (project.name, "*")
            and grant.resource in (resource, "*")
        ):
            actions |= ALL if grant.action == "*" else {grant.action}
    return frozenset(actions)


def _names(grants: Iterable[Grant], project: Project) -> bool:
    return any(g.kind == "project" and g.namespace in (project.name, "*") for g in grants)


def project_actions(actor: Actor, project: Project, resource: str) -> frozenset[str]:
    """Every action the actor may take on ``resource`` in ``project``."""
    if actor.sysadmin:
        return ALL
    public = PUBLIC_PERMISSIONS.get(resource, frozenset()) if project.public else frozenset()
    if actor.limit is not None:
        granted = _granted(actor.limit.grants, project, resource)
        if resource == "project" and _names(actor.limit.grants, project):
            granted |= {"read"}  # a token for something in the project sees the project
        if not granted:
            return public
        if actor.limit.sysadmin:
            return public | granted
        role = member_role(actor, project)
        if role is None:
            return public
        return public | (granted & PROJECT_PERMISSIONS[role].get(resource, frozenset()))
    actions: set[str] = set(public)
    role = member_role(actor, project)
    if role is not None:
        actions |= PROJECT_PERMISSIONS[role].get(resource, frozenset())
    actions |= _granted(actor.grants, project, resource)
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
    grants = actor.grants
    if actor.limit is not None:
        # Only a system administrator's token may carry system permissions.
        if not actor.limit.sysadmin:
            return False
        grants = actor.limit.grants
    return any(
        g.kind == "system" and g.resource in (resource, "*") and g.action in (action, "*")
        for g in grants
    )


def require_system(actor: Actor, resource: str, action: str) -> None:
    """Raise Unauthenticated for an anonymous caller, Denied for one without
    the system permission ``resource:action``."""
    if system_can(actor, resource, action):
        return
    if not actor.authenticated:
        raise Unauthenticated()
    raise Denied(f"{resource}:{action}")


def lacking(actor: Actor, grants: Iterable[Grant]) -> list[Grant]:
    """The grants among ``grants`` the actor does not hold itself (one query for
    the projects they name, plus the actor's role in each). A grant on every
    project (``*``) is held by system administrators alone; one on a project
    that does not exist is held by nobody else either."""
    grants = list(grants)
    if actor.sysadmin:
        return []
    names = {g.namespace for g in grants if g.kind == "project" and g.namespace != "*"}
    projects = {p.name: p for p in Project.objects.filter(name__in=names)} if names else {}
    actions: dict[tuple[str, str], frozenset[str]] = {}
    missing = []
    for grant in grants:
        if grant.kind == "system":
            held = system_can(actor, grant.resource, grant.action)
        elif (project := projects.get(grant.namespace)) is None:
            held = False
        else:
            key = (grant.namespace, grant.resource)
            if key not in actions:
                actions[key] = project_actions(actor, project, grant.resource)
            held = grant.action in actions[key]
        if not held:
            missing.append(grant)
    return missing


def require_holds(actor: Actor, grants: Iterable[Grant], *, what: str) -> None:
    """Raise Denied unless the actor holds every grant of the principal it acts
    on (``what`` names that principal in the message). The one rule for every
    actor-on-principal change: a weaker principal never creates, changes,
    refreshes the secret of, or deletes a stronger one."""
    missing = lacking(actor, grants)
    if missing:
        first = missing[0]
        raise Denied(
            f"{what} holds {first.resource}:{first.action}, which the caller does not hold"
        )


def visible_projects(actor: Actor) -> QuerySet[Project]:
    """Projects the actor may know exist: one query, usable as a subquery."""
    projects = Project.objects.all()
    if actor.sysadmin:
        return projects
    visible = Q(public=True)
    if actor.limit is not None:
        namespaces = {g.namespace for g in actor.limit.grants if g.kind == "project"}
        own = Q() if actor.limit.sysadmin else Q(pk__in=member_rows(actor.id).values("project_id"))
        named = Q() if "*" in namespaces else Q(name__in=namespaces)
        if namespaces:
            visible |= own & named
        return projects.filter(visible).distinct()
    if actor.kind == "user":
        visible |= Q(pk__in=member_rows(actor.id).values("project_id"))
    if actor.kind == "robot":
        namespaces = {g.namespace for g in actor.grants if g.kind == "project"}
        if "*" in namespaces:
            return projects
        visible |= Q(name__in=namespaces)
    return projects.filter(visible).distinct()


def roles_granting(resource: str, action: str) -> list[int]:
    """The membership roles whose permissions include ``resource:action``."""
    return [
        role for role, perms in PROJECT_PERMISSIONS.items() if action in perms.get(resource, ())
    ]


def role_allows(role: int, resource: str, action: str) -> bool:
    return action in PROJECT_PERMISSIONS[role].get(resource, ())


def projects_where(actor: Actor, resource: str, action: str) -> QuerySet[Project]:
    """Projects where the actor may do ``resource:action`` (no query until used;
    usable as a subquery)."""
    projects = Project.objects.all()
    if actor.sysadmin:
        return projects
    allowed = Q(pk__in=[])
    if action in PUBLIC_PERMISSIONS.get(resource, ()):
        allowed |= Q(public=True)
    if actor.limit is not None:
        namespaces = _namespaces(actor.limit.grants, resource, action)
        if not namespaces:
            return projects.filter(allowed)
        named = Q() if "*" in namespaces else Q(name__in=namespaces)
        if actor.limit.sysadmin:
            return projects.filter(allowed | named)
        roles = roles_granting(resource, action)
        members = member_rows(actor.id).filter(role__in=roles)
        return projects.filter(allowed | (Q(pk__in=members.values("project_id")) & named))
    if actor.kind == "user":
        roles = roles_granting(resource, action)
        if roles:
            members = member_rows(actor.id).filter(role__in=roles)
            allowed |= Q(pk__in=members.values("project_id"))
    if actor.kind == "robot":
        namespaces = _namespaces(actor.grants, resource, action)
        if "*" in namespaces:
            return projects
        allowed |= Q(name__in=namespaces)
    return projects.filter(allowed)


def _namespaces(grants: Iterable[Grant], resource: str, action: str) -> set[str]:
    """The projects (names, or ``*``) where project grants allow ``resource:action``."""
    return {
        g.namespace
        for g in grants
        if g.kind == "project" and g.resource in (resource, "*") and g.action in (action, "*")
    }


def restrict(
    queryset: QuerySet[M],
    actor: Actor,
    resource: str,
    action: str,
    *,
    project_path: str = "project",
) -> QuerySet[M]:
    """The rows of ``queryset`` in projects where the actor may do
    ``resource:action``; ``project_path`` is how a row reaches its project, as a
    lookup (``"pk"`` for projects themselves). One query, with a subquery."""
    if actor.sysadmin:
        return queryset
    ids = projects_where(actor, resource, action).values("pk")
    return queryset.filter(**{f"{project_path}__in": ids})


def memberships(actor: Actor) -> dict[int, int]:
    """project id → role, for every project the actor is a member of, itself or
    through a group: the highest (one query)."""
    if actor.kind != "user":
        return {}
    roles: dict[int, list[int]] = {}
    for project_id, role in member_rows(actor.id).values_list("project_id", "role"):
        roles.setdefault(project_id, []).append(role)
    return {pid: r for pid, held in roles.items() if (r := highest_role(held)) is not None}


def member_projects(actor: Actor) -> QuerySet[Member, Any]:
    """The ids of the projects the actor is a member of, as a subquery (no query
    until used; none for robots and visitors)."""
    rows = member_rows(actor.id) if actor.kind == "user" else Member.objects.none()
    return rows.values("project_id")


def public_allows(resource: str, action: str) -> bool:
    """Does a public project let anyone do ``resource:action``?"""
    return action in PUBLIC_PERMISSIONS.get(resource, ())


# Repositories by name ----------------------------------------------------------


def split_repository(name: str) -> tuple[str, str] | None:
    """(project name, path within the project) of a repository name: the project
    is its first component, and there must be more than one. The one place that
    rule is written."""
    head, sep, rest = name.partition("/")
    if not sep or not rest:
        return None
    return head, rest


def project_for_repository(name: str) -> Project | None:
    """The project a repository name lives in (one query), or None."""
    parts = split_repository(name)
    if parts is None:
        return None
    return Project.objects.filter(name=parts[0]).first()


def repository_actions(actor: Actor, name: str) -> frozenset[str]:
    """Every action the actor may take on repository ``name`` (none when its
    project does not exist)."""
    project = project_for_repository(name)
    if project is None:
        return frozenset()
    return project_actions(actor, project, "repository")


@dataclass(frozen=True, slots=True)
class Scope:
    """A scope a registry token is asked for: ``repository:<name>:<actions>``."""

    type: str
    name: str
    actions: tuple[str, ...]


def grant_scopes(actor: Actor, requested: list[Scope]) -> list[dict[str, Any]]:
    """The access list for a token: for each scope, requested ∩ permitted.

    A repository named by several scopes (a client's own ``pull,push`` and the
    challenge's ``push``, as the bench client and others send them) is looked
    up once."""
    out: list[dict[str, Any]] = []
    permitted: dict[str, frozenset[str]] = {}
    for scope in requested:
        if scope.type == "repository":
            if scope.name not in permitted:
                permitted[scope.name] = repository_actions(actor, scope.name)
            wanted = set(REPOSITORY_ACTIONS) if "*" in scope.actions else set(scope.actions)
            actions = sorted(wanted & permitted[scope.name] & set(REPOSITORY_ACTIONS))
        elif scope.type == "registry" and scope.name == "catalog":
            # Everyone may ask; the catalog lists only what the caller may see.
            actions = ["*"] if "*" in scope.actions else []
        else:
            actions = []
        out.append({"type": scope.type, "name": scope.name, "actions": actions})
    return out
