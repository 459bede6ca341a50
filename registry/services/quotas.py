"""Project quotas as Harbor's API shows them: hard limits a system administrator
sets (``ProjectQuota``; none = unlimited) and usage computed from the blobs
linked into each project. A quota's id is its project's id. Limits are stored
and shown; pushes are not refused over them yet (the quotas issue)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from accounts import access
from accounts.access import Actor
from accounts.models import Project
from audit.events import Operation, Resource
from audit.services import record
from kit.errors import Denied, Invalid, NotFound
from registry.models import Blob, ProjectQuota

UNLIMITED = -1
# The resources a project's quota limits (Harbor 2.x: storage only).
RESOURCES = ("storage",)


def usage(projects: Iterable[Project] | QuerySet[Project]) -> dict[int, int]:
    """Bytes stored per project, each blob counted once per project (one query)."""
    rows = (
        Blob.objects.filter(repository_links__repository__project__in=projects)
        .values("repository_links__repository__project_id", "pk", "size")
        .distinct()
    )
    used: dict[int, int] = {}
    for row in rows:
        pid = row["repository_links__repository__project_id"]
        used[pid] = used.get(pid, 0) + row["size"]
    return used


def quota_row(project: Project) -> ProjectQuota | None:
    """The project's limits row, or None (unlimited). Free on projects fetched
    with ``select_related("quota")``."""
    try:
        return project.quota
    except ProjectQuota.DoesNotExist:
        return None


def hard_limits(project: Project) -> dict[str, int]:
    quota = quota_row(project)
    return {"storage": quota.storage_limit if quota else UNLIMITED}


def quota_list(*, actor: Actor, reference: str | None, reference_id: int | None) -> QuerySet:
    """Every project's quota (system ``quota:list``), Harbor's filters:
    ``reference=project`` and one project's by ``reference_id``."""
    if not access.system_can(actor, "quota", "list"):
        raise Denied("listing quotas needs system quota:list")
    projects = Project.objects.select_related("owner", "quota").order_by("name")
    if reference not in (None, "", "project"):
        projects = projects.none()
    if reference_id is not None:
        projects = projects.filter(pk=reference_id)
    return projects


def quota_get(*, actor: Actor, quota_id: int) -> Project:
    """The project of quota ``quota_id`` if the actor may read its quota."""
    project = (
        access.visible_projects(actor).filter(pk=quota_id).select_related("owner", "quota").first()
    )
    if project is None:
        raise NotFound(str(quota_id))
    access.require(actor, "quota", "read", project)
    return project


def project_quota(project: Project) -> dict[str, dict[str, int]]:
    """Harbor's ProjectSummaryQuota (the summary's ``quota``; named in
    ``BERTH_PROJECT_QUOTA`` for accounts, which cannot import registry)."""
    return {"hard": hard_limits(project), "used": {"storage": usage([project]).get(project.pk, 0)}}


def _limits(hard: Any) -> dict[str, int]:
    """Harbor's checks (quota driver ``Validate``): an object naming every
    resource of RESOURCES and no other, each -1 (unlimited) or a positive
    64-bit number of bytes."""
    if not isinstance(hard, dict) or not hard:
        raise Invalid("hard required in body")
    for name, value in hard.items():
        if name not in RESOURCES:
            raise Invalid(f"resource {name} not support")
        # bool is an int to Python, not to JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"invalid value for resource {name}")
        if (value <= 0 and value != UNLIMITED) or value >= 2**63:
            raise Invalid(f"invalid value for resource {name}")
    for name in RESOURCES:
        if name not in hard:
            raise Invalid(f"resource {name} not found")
    return dict(hard)


def quota_update(*, actor: Actor, quota_id: int, hard: Any) -> ProjectQuota:
    """Set a project's hard limits: system administrators (and system robots
    granted ``quota:update``) only, as in Harbor; audited in the same transaction."""
    if not access.system_can(actor, "quota", "update"):
        if actor.authenticated and not access.visible_projects(actor).filter(pk=quota_id).exists():
            raise NotFound(str(quota_id))
        access.require_system(actor, "quota", "update")
    limits = _limits(hard)
    with transaction.atomic():
        project = Project.objects.select_for_update().filter(pk=quota_id).first()
        if project is None:
            raise NotFound(str(quota_id))
        quota, _ = ProjectQuota.objects.update_or_create(
            project=project, defaults={"storage_limit": limits["storage"]}
        )
        record(
            actor=actor,
            operation=Operation.UPDATE,
            resource_type=Resource.QUOTA,
            resource=project.name,
            project=project,
            detail={"hard": limits},
        )
    return quota
