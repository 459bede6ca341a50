"""Project quotas as Harbor's: hard limits a system administrator sets
(``ProjectQuota``; none = unlimited), usage counted as Harbor counts it, and
pushes refused when they would take a project over its limit.

What a project is charged for (``ProjectBlob``): every blob linked into one
of its repositories and every manifest of it, each digest once per project
(a layer shared by ten repositories of a project counts once; shared by two
projects, once in each). Blobs a push uploaded but no manifest uses yet count
too, as in Harbor, until garbage collection unlinks them.

Usage is never one row that every push must update (Harbor's hot row,
harbor#18440): each change of usage is a ``QuotaUsage`` row inserted in the
transaction that changes the content, and a project's usage is their sum. The
reconcile job (``reconcile``, scheduled) folds a project's rows into one and
repairs anything a crash or an unexpected path left wrong.

Enforcement: a charge that would take usage over the limit is refused with
Harbor's ``DENIED`` message, before anything is linked. Checks read usage
without locking it, so pushes running at the same instant may each pass the
check against the same usage: a project can end over its limit by at most
what those concurrent pushes added (docs/quotas.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet, Sum

from accounts import access
from accounts.access import Actor, split_repository
from accounts.models import Project
from accounts.services import config
from audit.events import Operation, Resource
from audit.services import record
from kit.errors import Denied, Invalid, NotFound
from registry.errors import Code, RegistryError
from registry.models import Manifest, ProjectBlob, ProjectQuota, QuotaUsage, RepositoryBlob

UNLIMITED = -1
# The resources a project's quota limits (Harbor 2.x: storage only).
RESOURCES = ("storage",)
# Rows a statement names at once (SQLite allows 32766 parameters).
CHUNK = 500


def usage(projects: Iterable[Project | int] | QuerySet[Project]) -> dict[int, int]:
    """Bytes charged per project (projects or their ids): the sum of its usage
    rows (one query)."""
    rows = (
        QuotaUsage.objects.filter(project__in=projects)
        .values("project_id")
        .annotate(total=Sum("bytes"))
        .values_list("project_id", "total")
    )
    return {pid: total or 0 for pid, total in rows}


def display_size(value: int) -> str:
    """Bytes as Harbor's quota messages write them: ``512 B``, ``1.2 MiB``."""
    if value < 1024:
        return f"{value} B"
    scaled = float(value)
    for unit in "KMGTPE":
        scaled /= 1024
        if scaled < 1024 or unit == "E":
            return f"{scaled:.1f} {unit}iB"
    raise AssertionError("unreachable")


def exceeded(adding: int, used: int, limit: int) -> RegistryError:
    """Harbor's refusal, word for word (``docker push`` prints it after ``denied:``)."""
    return RegistryError(
        Code.DENIED,
        f"adding {display_size(adding)} of storage resource, which when updated to current "
        f"usage of {display_size(used)} will exceed the configured upper limit of "
        f"{display_size(limit)}.",
    )


@dataclass(frozen=True, slots=True)
class Item:
    """Content landing in a project: a blob linked or a manifest stored."""

    project_id: int
    digest: str
    size: int


@dataclass
class _Budget:
    limit: int
    used: int
    charged: set[str] = field(default_factory=set)


def charge(items: Sequence[Item]) -> list[RegistryError | None]:
    """Charge each item's project for its digest unless already charged, in the
    caller's transaction; per item, None or the ``DENIED`` error of a charge
    that would exceed the project's limit (that item is charged nothing and the
    caller must not link it). Items of one batch count against each other."""
    if not items:
        return []
    results: list[RegistryError | None] = [None] * len(items)
    project_ids = {item.project_id for item in items}
    limits = dict(
        ProjectQuota.objects.filter(project_id__in=project_ids)
        .exclude(storage_limit=UNLIMITED)
        .values_list("project_id", "storage_limit")
    )
    if limits:
        results = _admit(items, limits)
    _insert([item for item, error in zip(items, results, strict=True) if error is None])
    return results


def _admit(items: Sequence[Item], limits: dict[int, int]) -> list[RegistryError | None]:
    limited = [item for item in items if item.project_id in limits]
    used = usage(Project.objects.filter(pk__in=list(limits)))
    budgets = {pid: _Budget(limit=limit, used=used.get(pid, 0)) for pid, limit in limits.items()}
    for pid, digest in ProjectBlob.objects.filter(
        project_id__in=list(limits), digest__in=sorted({item.digest for item in limited})
    ).values_list("project_id", "digest"):
        budgets[pid].charged.add(digest)
    results: list[RegistryError | None] = []
    for item in items:
        budget = budgets.get(item.project_id)
        if budget is None or item.digest in budget.charged:
            results.append(None)
            continue
        if budget.used + item.size > budget.limit:
            results.append(exceeded(item.size, budget.used, budget.limit))
            continue
        budget.used += item.size
        budget.charged.add(item.digest)
        results.append(None)
    return results


def _insert(items: Sequence[Item]) -> None:
    """Insert-or-nothing the items' ``ProjectBlob`` rows and add a usage row per
    project for those actually inserted (the database says which: a concurrent
    push of the same digest into the same project inserts it once)."""
    unique = sorted({(i.project_id, i.digest): i.size for i in items}.items())
    added: dict[int, int] = {}
    table = ProjectBlob._meta.db_table
    for start in range(0, len(unique), CHUNK):
        part = unique[start : start + CHUNK]
        values = ", ".join(["(%s, %s, %s, CURRENT_TIMESTAMP)"] * len(part))
        params: list[Any] = []
        for (pid, digest), size in part:
            params += [pid, digest, size]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (project_id, digest, size, created_at) "  # noqa: S608
                f"VALUES {values} ON CONFLICT (project_id, digest) DO NOTHING "
                "RETURNING project_id, size",
                params,
            )
            for pid, size in cursor.fetchall():
                added[pid] = added.get(pid, 0) + size
    _record_usage(added)


def _record_usage(changes: dict[int, int]) -> None:
    rows = [QuotaUsage(project_id=pid, bytes=n) for pid, n in sorted(changes.items()) if n]
    if rows:
        QuotaUsage.objects.bulk_create(rows)


def _present(project_id: int, digests: Sequence[str]) -> set[str]:
    """Which of ``digests`` the project still holds (a link or a manifest)."""
    linked = RepositoryBlob.objects.filter(
        repository__project_id=project_id, blob__digest__in=digests
    ).values_list("blob__digest", flat=True)
    stored = Manifest.objects.filter(
        repository__project_id=project_id, digest__in=digests
    ).values_list("digest", flat=True)
    return set(linked) | set(stored)


def release(*, project_id: int, digests: Iterable[str]) -> int:
    """After content left the project (a manifest, a repository, a blob link
    deleted; garbage collection), stop charging it for the digests it no longer
    holds; in the caller's transaction. The bytes released."""
    wanted = sorted(set(digests))
    freed = 0
    table = ProjectBlob._meta.db_table
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        gone = sorted(set(part) - _present(project_id, part))
        if not gone:
            continue
        marks = ", ".join(["%s"] * len(gone))
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE project_id = %s "  # noqa: S608
                f"AND digest IN ({marks}) RETURNING size",
                [project_id, *gone],
            )
            freed += sum(size for (size,) in cursor.fetchall())
    _record_usage({project_id: -freed})
    return freed


def precheck(*, repository_name: str, digest: str, size: int) -> None:
    """Refuse, before storing anything, bytes that would take the repository's
    project over its limit (the charge at registration decides; this spares
    storing bytes only to refuse them). One query for an unlimited project."""
    parts = split_repository(repository_name)
    if not parts:
        return
    row = (
        ProjectQuota.objects.filter(project__name=parts[0])
        .exclude(storage_limit=UNLIMITED)
        .values_list("project_id", "storage_limit")
        .first()
    )
    if row is None:
        return
    project_id, limit = row
    if ProjectBlob.objects.filter(project_id=project_id, digest=digest).exists():
        return
    used = usage([project_id]).get(project_id, 0)
    if used + size > limit:
        raise exceeded(size, used, limit)


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
        used = usage([project.pk]).get(project.pk, 0)
        if limits["storage"] != UNLIMITED and limits["storage"] < used:
            raise Invalid(
                f"storage limit {display_size(limits['storage'])} is below the project's "
                f"current usage of {display_size(used)}: delete content (and let garbage "
                "collection run) or set a higher limit"
            )
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


def default_limit() -> int:
    """Harbor's ``storage_per_project``: the limit a new project gets."""
    value = config.get("storage_per_project")
    return UNLIMITED if value is None else int(value)


def project_created(*, project: Project, storage_limit: int | None, sysadmin: bool) -> None:
    """A new project's limit, in its creation's transaction (named for accounts
    in ``BERTH_PROJECT_CREATED_QUOTA``): the ``storage_limit`` asked for when a
    system administrator creates it (0 or none: the default), the configured
    ``storage_per_project`` otherwise, as in Harbor."""
    limit = storage_limit if sysadmin and storage_limit not in (None, 0) else default_limit()
    if limit is not None and limit != UNLIMITED:
        ProjectQuota.objects.create(project=project, storage_limit=limit)


def check_limit(value: Any, *, name: str = "storage_limit") -> int | None:
    """A limit given by a client: None, -1 or a positive 64-bit byte count."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be a number of bytes or -1")
    if value < UNLIMITED or value >= 2**63:
        raise Invalid(f"{name} must be -1 (unlimited) or a positive number of bytes")
    return value


def held(project_id: int) -> dict[str, int]:
    """What the project holds now, from content's own tables: each digest of a
    blob linked into its repositories or of its manifests, with its size."""
    found = dict(
        RepositoryBlob.objects.filter(repository__project_id=project_id)
        .values_list("blob__digest", "blob__size")
        .distinct()
    )
    found.update(
        Manifest.objects.filter(repository__project_id=project_id)
        .values_list("digest", "size")
        .distinct()
    )
    return found


@dataclass(frozen=True, slots=True)
class Reconciled:
    project_id: int
    added: int  # digests charged that were not
    removed: int  # digests no longer held
    correction: int  # bytes the usage rows were off by
    usage: int


def _fold(project_id: int) -> tuple[int, int]:
    """Replace the project's usage rows by one, and correct it to the sum of its
    ``ProjectBlob`` rows; (usage, correction). One statement reads both, so on
    PostgreSQL both come from one snapshot: a push committing meanwhile leaves
    its rows to the next run, counted on both sides or on neither."""
    usage_table = QuotaUsage._meta.db_table
    blob_table = ProjectBlob._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT NULL, 0, (SELECT COALESCE(SUM(size), 0) FROM {blob_table} "  # noqa: S608
            "WHERE project_id = %s) "
            f"UNION ALL SELECT id, bytes, NULL FROM {usage_table} WHERE project_id = %s",
            [project_id, project_id],
        )
        rows = cursor.fetchall()
    truth = next(int(total) for pk, _, total in rows if pk is None)
    ids = [pk for pk, _, _ in rows if pk is not None]
    recorded = sum(int(n) for pk, n, _ in rows if pk is not None)
    for start in range(0, len(ids), CHUNK):
        QuotaUsage.objects.filter(pk__in=ids[start : start + CHUNK]).delete()
    if truth:
        QuotaUsage.objects.create(project_id=project_id, bytes=truth)
    return truth, truth - recorded


def reconcile_project(project_id: int) -> Reconciled:
    """Make a project's charges what it holds and fold its usage rows."""
    now = held(project_id)
    with transaction.atomic():
        charged = dict(
            ProjectBlob.objects.filter(project_id=project_id).values_list("digest", "size")
        )
        missing = [Item(project_id, d, size) for d, size in sorted(now.items()) if d not in charged]
        _insert(missing)
        extra = sorted(set(charged) - set(now))
        release(project_id=project_id, digests=extra)
        total, correction = _fold(project_id)
    return Reconciled(project_id, len(missing), len(extra), correction, total)


def reconcile(project_ids: Iterable[int] | None = None) -> list[Reconciled]:
    """``reconcile_project`` for the projects named, or every project."""
    ids = list(project_ids) if project_ids is not None else None
    if ids is None:
        ids = list(Project.objects.order_by("pk").values_list("pk", flat=True))
    return [reconcile_project(pid) for pid in ids]


def verify() -> list[str]:
    """``registry_check``'s part: every project's charges and usage match what
    it holds (run it while no push is running, or expect the pushes in flight)."""
    errors = []
    recorded = usage(Project.objects.all())
    charged: dict[int, dict[str, int]] = {}
    for pid, digest, size in ProjectBlob.objects.values_list("project_id", "digest", "size"):
        charged.setdefault(pid, {})[digest] = size
    for pid, name in Project.objects.order_by("name").values_list("pk", "name"):
        now = held(pid)
        mine = charged.get(pid, {})
        if now != mine:
            errors.append(
                f"project {name}: charged for {len(mine)} digests, holds {len(now)} "
                f"({len(set(now) - set(mine))} not charged, {len(set(mine) - set(now))} "
                "charged but gone); run manage.py quota_reconcile"
            )
        if recorded.get(pid, 0) != sum(now.values()):
            errors.append(
                f"project {name}: usage {recorded.get(pid, 0)} bytes recorded, "
                f"{sum(now.values())} held; run manage.py quota_reconcile"
            )
    return errors
