from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db.models import F

from accounts.access import split_repository
from accounts.models import Project
from registry.errors import Code, RegistryError
from registry.models import Repository
from registry.reference import is_name, name_invalid


def repository_ensure(*, name: str) -> Repository:
    """The repository with this name, created on first content (race-safe) in the
    project named by its first component, which must exist. The one way Berth
    creates repositories (/v2 pushes and mounts, the API's copy, tasks): a name
    outside the distribution grammar is NAME_INVALID before any query."""
    found = repositories_ensure([name])[name]
    if isinstance(found, RegistryError):
        raise found
    return found


def repositories_ensure(names: Iterable[str]) -> dict[str, Repository | RegistryError]:
    """``repository_ensure`` for several names at once, in a query or three: each
    name's repository, or the error that its name deserves."""
    wanted_names = set(names)
    found: dict[str, Repository | RegistryError] = {
        name: name_invalid(name) for name in wanted_names if not is_name(name)
    }
    valid = sorted(wanted_names - set(found))
    if not valid:
        return found
    found.update((repo.name, repo) for repo in Repository.objects.filter(name__in=valid))
    missing = [name for name in valid if name not in found]
    if not missing:
        return found
    heads = {name: split_repository(name) for name in missing}
    wanted = {parts[0] for parts in heads.values() if parts}
    projects = {p.name: p for p in Project.objects.filter(name__in=wanted)} if wanted else {}
    new = []
    for name, parts in heads.items():
        project = projects.get(parts[0]) if parts else None
        if project is None:
            found[name] = RegistryError(
                Code.NAME_UNKNOWN,
                "repository names take the form <project>/<repository> in an existing project",
                detail={"name": name},
            )
        else:
            new.append(Repository(name=name, project=project))
    if new:
        Repository.objects.bulk_create(new, ignore_conflicts=True)
        found.update(
            (repo.name, repo) for repo in Repository.objects.filter(name__in=[r.name for r in new])
        )
    return found


def record_pulls(*, counts: Mapping[str, int], last_pulled: Mapping[str, datetime]) -> None:
    """Add pulls to repositories' counters (the audit writer's batch, inside its
    transaction; ``BERTH_AUDIT_PULL_SINK``). A repository deleted meanwhile is
    skipped."""
    for name in sorted(counts):
        Repository.objects.filter(name=name).update(
            pull_count=F("pull_count") + counts[name], last_pulled_at=last_pulled[name]
        )
