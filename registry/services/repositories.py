from __future__ import annotations

from registry.errors import Code, RegistryError
from registry.models import Project, Repository


def repository_ensure(*, name: str) -> Repository:
    """The repository with this name, created on first content (race-safe) in the
    project named by its first component, which must exist."""
    repo = Repository.objects.filter(name=name).first()
    if repo is not None:
        return repo
    head, sep, rest = name.partition("/")
    project = Project.objects.filter(name=head).first() if sep and rest else None
    if project is None:
        raise RegistryError(
            Code.NAME_UNKNOWN,
            "repository names take the form <project>/<repository> in an existing project",
            detail={"name": name},
        )
    Repository.objects.bulk_create([Repository(name=name, project=project)], ignore_conflicts=True)
    return Repository.objects.get(name=name)
