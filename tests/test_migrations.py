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


# Before the audit trail knew its projects by id (issue 13, item 8).
BEFORE_AUDIT_PROJECT_IDS = [
    ("accounts", "0005_robot_stamp"),
    ("audit", "0002_immutable_rule_resource"),
]


@pytest.mark.django_db(transaction=True)
def test_audit_rows_get_their_projects_id_but_not_a_namesakes():
    from datetime import timedelta

    from django.utils import timezone

    old = _migrate(BEFORE_AUDIT_PROJECT_IDS)
    try:
        now = timezone.now()
        project = old.get_model("accounts", "Project").objects.create(name="team")
        events = old.get_model("audit", "AuditEvent").objects

        def row(resource: str, project_name: str, when):
            return events.create(
                occurred_at=when,
                username="dev",
                operation="create",
                resource_type="member",
                resource=resource,
                project_name=project_name,
            ).pk

        namesake = row("of the deleted team", "team", project.created_at - timedelta(days=1))
        own = row("of this team", "team", project.created_at + timedelta(seconds=1))
        gone = row("of a deleted project", "gone", now)
    finally:
        _migrate(_latest())

    from audit.models import AuditEvent

    ids = dict(AuditEvent.objects.values_list("pk", "project_id"))
    assert (ids[own], ids[namesake], ids[gone]) == (project.pk, None, None)


@pytest.mark.django_db(transaction=True)
def test_the_previous_release_still_adds_users_after_user_stamp():
    """A rolling upgrade: the release before ``User.stamp`` inserts users without
    the column (its model has none); the database's default fills it, and the
    user's refresh tokens keep the digest that release gave them."""
    from accounts.access import Actor
    from accounts.services.auth import _digest, principal_stamp

    old = _migrate([("accounts", "0006_audit_project_ids")])
    _migrate(_latest())
    user = old.get_model("accounts", "User").objects.create(username="late", password="x")

    from accounts.models import User

    assert User.objects.get(pk=user.pk).stamp == ""
    actor = Actor(kind="user", id=user.pk, name="late")
    assert principal_stamp(actor) == _digest("stamp", "user", str(user.pk), "x", "late")
