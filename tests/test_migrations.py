"""Migrations keep every row: a database populated at the previous schema is
migrated forward and read back through today's models (SQLite, and PostgreSQL
in the suite's second pass)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The schema before Project moved from registry to accounts.
BEFORE_PROJECT_MOVE = [("accounts", "0003_systemsetting"), ("registry", "0005_scheduledrun")]


def _migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_project_moves_to_accounts_without_losing_a_row():
    old = _migrate(BEFORE_PROJECT_MOVE)
    try:
        user = old.get_model("accounts", "User").objects.create(username="owner")
        project = old.get_model("registry", "Project").objects.create(
            name="team", public=True, owner=user, metadata={"auto_scan": "true"}
        )
        old.get_model("accounts", "Member").objects.create(project=project, user=user, role=1)
        old.get_model("accounts", "Robot").objects.create(
            name="robot$team+ci", project=project, secret_hash="x"
        )
        repo = old.get_model("registry", "Repository").objects.create(
            project=project, name="team/app"
        )
        old.get_model("registry", "ImmutableRule").objects.create(project=project, tag_pattern="v*")
        content_types = old.get_model("contenttypes", "ContentType").objects
        moved_type = content_types.get_or_create(app_label="registry", model="project")[0]
    finally:
        _migrate(_latest())

    from django.contrib.contenttypes.models import ContentType

    from accounts.models import Member, Project, Robot
    from registry.models import ImmutableRule, Repository

    moved = Project.objects.get(name="team")
    assert (moved.pk, moved.public, moved.owner.username, moved.metadata) == (
        project.pk,
        True,
        "owner",
        {"auto_scan": "true"},
    )
    assert Member.objects.get(project=moved).user_id == user.pk
    assert Robot.objects.get(project=moved).name == "robot$team+ci"
    assert Repository.objects.get(project=moved).pk == repo.pk
    assert ImmutableRule.objects.get(project=moved).tag_pattern == "v*"
    assert list(moved.repositories.values_list("name", flat=True)) == ["team/app"]
    # The content type row followed the model (admin history keeps its target).
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(Project).pk == moved_type.pk
    assert not ContentType.objects.filter(app_label="registry", model="project").exists()
    # Deleting still cascades through the same table's foreign keys.
    Repository.objects.all().delete()
    moved.delete()
    assert not Member.objects.exists() and not Robot.objects.exists()
