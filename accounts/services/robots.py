"""Harbor v2 robot accounts: system and project level, never above their creator."""

from __future__ import annotations

import datetime
import re
import secrets
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import access
from accounts.access import Actor, robot_grants
from accounts.errors import Conflict, Denied, Invalid, NotFound, Unauthenticated
from accounts.models import Project, Robot
from accounts.passwords import POLICY, password_ok
from accounts.rbac import PROJECT_RESOURCES, SYSTEM_PERMISSIONS
from accounts.services.auth import principal_changed
from accounts.services.secrets import generate_secret, hash_secret
from audit.events import Operation, Resource
from audit.services import record

NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
PREFIX = "robot$"


def clean_permissions(raw: Any) -> list[dict[str, Any]]:
    """Harbor's RobotPermission list, checked against the vocabulary (robots
    and personal access tokens alike); Invalid otherwise."""
    if not isinstance(raw, list) or not raw:
        raise Invalid("permissions must be a non-empty list")
    out = []
    for perm in raw:
        if not isinstance(perm, dict):
            raise Invalid("each permission must be an object")
        kind = perm.get("kind")
        namespace = perm.get("namespace")
        accesses = perm.get("access")
        if kind not in ("project", "system") or not isinstance(namespace, str):
            raise Invalid("permission kind must be project or system, with a namespace")
        if not isinstance(accesses, list) or not accesses:
            raise Invalid("permission access must be a non-empty list")
        pool = PROJECT_RESOURCES if kind == "project" else SYSTEM_PERMISSIONS
        cleaned = []
        for item in accesses:
            resource = item.get("resource") if isinstance(item, dict) else None
            action = item.get("action") if isinstance(item, dict) else None
            effect = item.get("effect", "allow") if isinstance(item, dict) else None
            if (
                resource not in pool
                or action not in pool[resource]
                or effect not in ("allow", "deny")
            ):
                raise Invalid(f"unknown {kind} permission {resource}:{action}")
            cleaned.append({"resource": resource, "action": action, "effect": effect})
        out.append({"kind": kind, "namespace": namespace, "access": cleaned})
    return out


def _require_grantable(actor: Actor, perms: list[dict[str, Any]]) -> None:
    """Permissions given to a robot name existing projects, and the actor holds
    each of them (a robot never exceeds its creator)."""
    grants = robot_grants(perms)
    names = {g.namespace for g in grants if g.kind == "project" and g.namespace != "*"}
    found = set(Project.objects.filter(name__in=names).values_list("name", flat=True))
    if names - found:
        raise Invalid(f"no project {sorted(names - found)[0]}")
    access.require_holds(actor, grants, what="the robot")


def _expiry(duration: Any) -> datetime.datetime | None:
    if (
        not isinstance(duration, int)
        or isinstance(duration, bool)
        or duration == 0
        or duration < -1
    ):
        raise Invalid("duration must be a positive number of days or -1")
    return None if duration == -1 else timezone.now() + datetime.timedelta(days=duration)


def robot_create(
    *,
    actor: Actor,
    name: str,
    level: str,
    permissions: Any,
    duration: Any = -1,
    description: str = "",
    disable: bool = False,
    secret: str | None = None,
) -> tuple[Robot, str]:
    if not actor.authenticated:
        raise Unauthenticated()
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > 200:
        raise Invalid("robot name must be lower-case letters and digits separated by . _ or -")
    perms = clean_permissions(permissions)
    project = None
    if level == "project":
        if len(perms) != 1 or perms[0]["kind"] != "project" or perms[0]["namespace"] == "*":
            raise Invalid("a project robot has exactly one permission, on its own project")
        project = Project.objects.filter(name=perms[0]["namespace"]).first()
        if project is None or not access.project_actions(actor, project, "project"):
            raise NotFound(perms[0]["namespace"])
        access.require(actor, "robot", "create", project)
        full_name = f"{PREFIX}{project.name}+{name}"
    elif level == "system":
        if not access.system_can(actor, "robot", "create"):
            raise Denied("only system administrators may create system robots")
        full_name = f"{PREFIX}{name}"
    else:
        raise Invalid("level must be system or project")
    _require_grantable(actor, perms)
    if secret is not None and not password_ok(secret):
        raise Invalid(f"secret must have {POLICY}")
    secret = secret or generate_secret()
    robot = Robot(
        name=full_name,
        description=description or "",
        project=project,
        secret_hash=hash_secret(secret),
        disabled=bool(disable),
        duration=duration,
        expires_at=_expiry(duration),
        permissions=perms,
        creator=f"{actor.kind}:{actor.name}",
    )
    try:
        with transaction.atomic():
            robot.save()
            record(
                actor=actor,
                operation=Operation.CREATE,
                resource_type=Resource.ROBOT,
                resource=full_name,
                project=project,
                detail={"permissions": perms},
            )
    except IntegrityError:
        raise Conflict(f"robot {full_name} already exists") from None
    return robot, secret


def _require_robot_permission(actor: Actor, robot: Robot, action: str) -> None:
    if robot.project_id is None:
        if not access.system_can(actor, "robot", action):
            raise NotFound(str(robot.pk))
        return
    project = robot.project
    assert project is not None
    if not access.project_actions(actor, project, "project"):
        raise NotFound(str(robot.pk))
    access.require(actor, "robot", action, project)


def robots_visible(*, actor: Actor, project_id: int | None) -> Any:
    """The robots of project ``project_id`` (or every robot, for a system
    caller). A project the actor may not see answers as one that does not
    exist: the same NotFound, naming only the id it was given (B21)."""
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None or not access.project_actions(actor, project, "project"):
            raise NotFound(f"project {project_id}")
        access.require(actor, "robot", "list", project)
        return Robot.objects.filter(project=project).select_related("project")
    if not access.system_can(actor, "robot", "list"):
        raise Denied("listing all robots needs system robot:list")
    return Robot.objects.select_related("project")


def robot_get(*, actor: Actor, robot_id: int, action: str = "read") -> Robot:
    robot = Robot.objects.filter(pk=robot_id).select_related("project").first()
    if robot is None:
        raise NotFound(str(robot_id))
    _require_robot_permission(actor, robot, action)
    return robot


def _robot_to_change(*, actor: Actor, robot_id: int, action: str) -> Robot:
    """The robot ``actor`` may ``action`` (update, delete): visible, the
    ``robot:<action>`` permission, and every permission the robot holds held by
    the actor too, or a weak robot could take a strong one over (set its
    secret, then log in as it)."""
    robot = robot_get(actor=actor, robot_id=robot_id, action=action)
    access.require_holds(actor, robot_grants(robot.permissions), what=robot.name)
    return robot


def _forget_on_commit(robot: Robot) -> None:
    """This process re-checks the robot on its next token (disabled, deleted);
    the others within BERTH_PRINCIPAL_RECHECK_SECONDS."""
    transaction.on_commit(partial(principal_changed, "robot", robot.pk, robot.name))


def robot_refresh_secret(*, actor: Actor, robot_id: int, secret: str | None = None) -> str:
    robot = _robot_to_change(actor=actor, robot_id=robot_id, action="update")
    # An empty secret asks for a new random one, as an absent one does (Harbor).
    if secret and not password_ok(secret):
        raise Invalid(f"secret must have {POLICY}")
    secret = secret or generate_secret()
    robot.secret_hash = hash_secret(secret)  # new salt: its refresh tokens die too
    with transaction.atomic():
        robot.save(update_fields=["secret_hash", "updated_at"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.ROBOT,
            resource=robot.name,
            project=robot.project,
            detail={"field": "secret"},
        )
    return secret


def robot_update(
    *, actor: Actor, robot_id: int, disable: Any, description: Any, duration: Any, permissions: Any
) -> Robot:
    robot = _robot_to_change(actor=actor, robot_id=robot_id, action="update")
    if permissions is not None:
        perms = clean_permissions(permissions)
        _require_grantable(actor, perms)
        if robot.project_id is not None and (
            len(perms) != 1 or perms[0]["namespace"] != robot.project.name  # type: ignore[union-attr]
        ):
            raise Invalid("a project robot keeps one permission on its own project")
        robot.permissions = perms
    if disable is not None:
        if disable and not robot.disabled:
            robot.stamp = secrets.token_hex(16)  # enabling it again revives no refresh token
        robot.disabled = bool(disable)
    if description is not None:
        robot.description = str(description)
    if duration is not None and duration != robot.duration:
        robot.expires_at = _expiry(duration)
        robot.duration = duration
    with transaction.atomic():
        robot.save()
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.ROBOT,
            resource=robot.name,
            project=robot.project,
            detail={"disable": robot.disabled, "permissions": robot.permissions},
        )
        _forget_on_commit(robot)
    return robot


def robot_delete(*, actor: Actor, robot_id: int) -> None:
    robot = _robot_to_change(actor=actor, robot_id=robot_id, action="delete")
    with transaction.atomic():
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.ROBOT,
            resource=robot.name,
            project=robot.project,
        )
        _forget_on_commit(robot)
        robot.delete()
