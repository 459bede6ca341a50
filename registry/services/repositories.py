from __future__ import annotations

from registry.models import Repository


def repository_ensure(*, name: str) -> Repository:
    """The repository with this name, created on first content (race-safe)."""
    repo = Repository.objects.filter(name=name).first()
    if repo is not None:
        return repo
    Repository.objects.bulk_create([Repository(name=name)], ignore_conflicts=True)
    return Repository.objects.get(name=name)
