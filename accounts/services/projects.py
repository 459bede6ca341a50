"""Projects and their members."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from accounts import access
from accounts.access import Actor
from accounts.errors import Conflict, Denied, Invalid, NotFound, PreconditionFailed, Unauthenticated
from accounts.models import Member, Project, Role, User
from accounts.services import config
from audit.events import Operation, Resource
from audit.services import record
from kit import events, params

PROJECT_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
# Metadata keys Harbor knows; values are strings ("true"/"false" for booleans).
METADATA_KEYS = {
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "retention_id",
    "proxy_speed_kb",
    "max_upstream_conn",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
    "proxy_cache_filter_pattern",
    "proxy_cache_filter_kind",
}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Invalid(f"expected true or false, got {value!r}")


def _clean_metadata(metadata: dict[str, Any] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("metadata must be an object")
    unknown = set(metadata) - METADATA_KEYS
    if unknown:
        raise Invalid(f"unknown metadata keys: {', '.join(sorted(unknown))}")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in metadata.items()}


def project_create(
    *, actor: Actor, name: str, public: bool | None = None, metadata: dict[str, Any] | None = None
) -> Project:
    if not actor.authenticated:
        raise Unauthenticated()
    if actor.kind == "robot" or actor.limit is not None:
        if not access.system_can(actor, "project", "create"):
            raise Denied(
                "only system robots and access tokens granted project:create may create projects"
            )
    elif config.get("project_creation_restriction") == "adminonly" and not actor.sysadmin:
        raise Denied("Only system admin can create project")  # Harbor's words; clients match them
    if not (1 <= len(name) <= 255) or not PROJECT_NAME_RE.fullmatch(name):
        raise Invalid("project name must be lower-case letters and digits separated by . _ or -")
    meta = _clean_metadata(metadata)
    is_public = _flag(meta.pop("public", public if public is not None else False))
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name,
                public=is_public,
                owner_id=actor.id if actor.kind == "user" else None,
                metadata=meta,
            )
            if actor.kind == "user":
                Member.objects.create(project=project, user_id=actor.id, role=Role.PROJECT_ADMIN)
            record(
                actor=actor,
                operation=Operation.CREATE,
                resource_type=Resource.PROJECT,
                resource=name,
                project=project,
            )
            events.emit(
                events.PROJECT_CREATED,
                key=name,
                project=name,
                public=is_public,
                actor=actor.name,
            )
    except IntegrityError:
        raise Conflict(f"project {name} already exists") from None
    return project


def project_lookup(*, actor: Actor, ref: str, by_name: bool | None = None) -> Project:
    """A project by id or name that the actor may see; NotFound otherwise (a
    private project and a missing one look the same)."""
    query = access.visible_projects(actor)
    key = None if by_name else params.identifier(ref)
    if by_name is False and key is None:
        raise NotFound(ref)
    project = query.filter(name=ref).first() if key is None else query.filter(pk=key).first()
    if project is None:
        raise NotFound(ref)
    return project


def project_update(
    *, actor: Actor, project: Project, metadata: dict[str, Any] | None, public: bool | None
) -> Project:
    access.require(actor, "project", "update", project)
    meta = _clean_metadata(metadata)
    if public is not None:
        meta.setdefault("public", str(public).lower() if isinstance(public, bool) else public)
    _save_metadata(actor, project, meta)
    return project


def _save_metadata(actor: Actor, project: Project, meta: dict[str, str]) -> None:
    """Apply cleaned metadata (``public`` goes to its column) and audit it."""
    if "public" in meta:
        project.public = _flag(meta.pop("public"))
    project.metadata = {**project.metadata, **meta}
    with transaction.atomic():
        project.save(update_fields=["public", "metadata", "updated_at"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.PROJECT,
            resource=project.name,
            project=project,
            detail={"public": project.public, "metadata": project.metadata},
        )
        _emit_updated(actor, project)


def _emit_updated(actor: Actor, project: Project) -> None:
    events.emit(
        events.PROJECT_UPDATED,
        key=project.name,
        project=project.name,
        public=project.public,
        actor=actor.name,
    )


def project_ids(names: Iterable[str]) -> dict[str, int]:
    """name → id of the projects that exist among ``names`` (one query): how the
    audit trail attributes a pull it knows by repository name only
    (``BERTH_AUDIT_PROJECT_IDS``)."""
    return dict(Project.objects.filter(name__in=list(names)).values_list("name", "pk"))


def project_deletable(*, project: Project) -> tuple[bool, str]:
    if project.repositories.exists():
        return False, "the project contains repositories"
    return True, ""


def project_delete(*, actor: Actor, project: Project) -> None:
    access.require(actor, "project", "delete", project)
    ok, why = project_deletable(project=project)
    if not ok:
        raise PreconditionFailed(why)
    with transaction.atomic():
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.PROJECT,
            resource=project.name,
            project=project,
        )
        project.delete()
        events.emit(
            events.PROJECT_DELETED, key=project.name, project=project.name, actor=actor.name
        )


def project_summary(*, actor: Actor, project: Project) -> dict[str, Any]:
    access.require(actor, "project", "read", project)
    counts = dict.fromkeys(Role.values, 0)
    for (role,) in Member.objects.filter(project=project).values_list("role"):
        counts[role] += 1
    summary: dict[str, Any] = {"repo_count": project.repositories.count()}
    if access.can(actor, "member", "list", project):
        summary.update(
            project_admin_count=counts[Role.PROJECT_ADMIN],
            maintainer_count=counts[Role.MAINTAINER],
            developer_count=counts[Role.DEVELOPER],
            guest_count=counts[Role.GUEST],
            limited_guest_count=counts[Role.LIMITED_GUEST],
        )
    if access.can(actor, "quota", "read", project):
        # Quotas are content's (registry): named, not imported.
        summary["quota"] = import_string(settings.BERTH_PROJECT_QUOTA)(project)
    return summary


# members ----------------------------------------------------------------------


def _role(role_id: Any) -> int:
    if role_id not in Role.values:
        raise Invalid(f"role_id must be one of {sorted(Role.values)}")
    return int(role_id)


def member_add(
    *, actor: Actor, project: Project, user_id: int | None, username: str | None, role_id: Any
) -> Member:
    access.require(actor, "member", "create", project)
    role = _role(role_id)
    users = User.objects.all()
    user = users.filter(pk=user_id).first() if user_id else users.filter(username=username).first()
    if user is None:
        raise Invalid("no such user")
    try:
        with transaction.atomic():
            member = Member.objects.create(project=project, user=user, role=role)
            record(
                actor=actor,
                operation=Operation.CREATE,
                resource_type=Resource.MEMBER,
                resource=user.username,
                project=project,
                detail={"role_id": role},
            )
            events.emit(
                events.MEMBER_ADDED,
                key=project.name,
                project=project.name,
                user=user.username,
                role=role,
                actor=actor.name,
            )
            return member
    except IntegrityError:
        raise Conflict(f"{user.username} is already a member") from None


def member_list(*, actor: Actor, project: Project, entityname: str = "") -> Any:
    access.require(actor, "member", "list", project)
    members = Member.objects.filter(project=project).select_related("user").order_by("id")
    if entityname:
        members = members.filter(user__username__icontains=entityname)
    return members


def member_get(*, actor: Actor, project: Project, member_id: int) -> Member:
    access.require(actor, "member", "read", project)
    member = Member.objects.filter(project=project, pk=member_id).select_related("user").first()
    if member is None:
        raise NotFound(str(member_id))
    return member


def member_update(*, actor: Actor, project: Project, member_id: int, role_id: Any) -> Member:
    access.require(actor, "member", "update", project)
    member = member_get(actor=actor, project=project, member_id=member_id)
    member.role = _role(role_id)
    with transaction.atomic():
        member.save(update_fields=["role", "updated_at"])
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.MEMBER,
            resource=member.user.username,
            project=project,
            detail={"role_id": member.role},
        )
        events.emit(
            events.MEMBER_UPDATED,
            key=project.name,
            project=project.name,
            user=member.user.username,
            role=member.role,
            actor=actor.name,
        )
    return member


def member_remove(*, actor: Actor, project: Project, member_id: int) -> None:
    access.require(actor, "member", "delete", project)
    member = member_get(actor=actor, project=project, member_id=member_id)
    with transaction.atomic():
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.MEMBER,
            resource=member.user.username,
            project=project,
        )
        member.delete()
        events.emit(
            events.MEMBER_REMOVED,
            key=project.name,
            project=project.name,
            user=member.user.username,
            actor=actor.name,
        )


# metadata ------------------------------------------------------------------------


def metadata_read(*, actor: Actor, project: Project) -> dict[str, str]:
    access.require(actor, "metadata", "read", project)
    return {**project.metadata, "public": "true" if project.public else "false"}


def metadata_set(*, actor: Actor, project: Project, values: Any, action: str) -> None:
    """``action`` is create (POST) or update (PUT): Harbor's metadata permissions."""
    access.require(actor, "metadata", action, project)
    meta = _clean_metadata(values)
    if not meta:
        raise Invalid("no metadata given")
    _save_metadata(actor, project, meta)


def metadata_delete(*, actor: Actor, project: Project, name: str) -> None:
    access.require(actor, "metadata", "delete", project)
    if name == "public":
        raise Invalid("public cannot be deleted; set it to false")
    if name not in project.metadata:
        raise NotFound(name)
    project.metadata = {k: v for k, v in project.metadata.items() if k != name}
    with transaction.atomic():
        project.save(update_fields=["metadata", "updated_at"])
        record(
            actor=actor,
            operation=Operation.DELETE,
            resource_type=Resource.PROJECT,
            resource=project.name,
            project=project,
            detail={"metadata": name},
        )
        _emit_updated(actor, project)
