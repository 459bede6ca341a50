"""The query count of every portal page that lists rows, pinned: the same with
a few rows as with many, for a member who sees through the policy module."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Member, Project, Role, User
from accounts.services.auth import actor_for_user
from audit.events import Operation, Resource
from audit.services import record
from registry.models import ImmutableRule
from tests.accounts.test_admin import add_content, make_robot

pytestmark = pytest.mark.django_db(transaction=True)


def pages(team: Project) -> dict[tuple[str, str], int]:
    """(user, page) -> queries: session and user; then the page's own: the
    dashboard's memberships, repository counts and pushes; a changelist's rows
    and count (the policy's cut is a subquery of each), the user's roles (the
    admin's scope), and what the page adds (the artifacts' tags, a filter's
    choices, "my projects")."""
    repo = team.repositories.order_by("pk").first()
    return {
        ("dev", "/"): 6,
        ("dev", "/search/?q=app"): 5,
        ("dev", "/admin/accounts/project/"): 6,
        ("dev", "/admin/accounts/project/?mine=1"): 7,
        ("dev", "/admin/registry/repository/?q=app"): 5,
        ("guest", f"/admin/registry/manifest/?repository__id__exact={repo.pk}"): 7,
        ("guest", "/admin/registry/manifest/"): 6,
        ("guest", "/admin/registry/tag/"): 5,
        ("guest", "/admin/accounts/member/"): 7,
        # A project as tabs, for its admin (who sees every tab): the session, the
        # user, the project, the user's role read by each policy check (one per
        # tab listed and per action offered: not yet kept for the request), then
        # the tab's own rows (summary: the counts, the quota, the storage used).
        ("padmin", f"/projects/{team.pk}/"): 19,
        ("padmin", f"/projects/{team.pk}/repositories/"): 12,
        ("padmin", f"/projects/{team.pk}/members/"): 15,
        ("padmin", f"/projects/{team.pk}/robots/"): 17,
        ("padmin", f"/projects/{team.pk}/immutable-rules/"): 14,
        ("padmin", f"/projects/{team.pk}/logs/"): 12,
    }


def grow(team: Project, n: int, start: int) -> None:
    add_content(team, n, start)
    admin = actor_for_user(User.objects.get(pk=1))
    dev = User.objects.get(username="dev")
    for i in range(start, start + n):
        project = Project.objects.create(name=f"p{i}", owner_id=1, public=bool(i % 2))
        Member.objects.create(project=project, user=dev, role=Role.DEVELOPER)
        user = User.objects.create_user(f"user{i}")
        Member.objects.create(project=team, user=user, role=Role.GUEST)
        make_robot(team, f"r{i}")
        ImmutableRule.objects.create(project=team, priority=i, tag_pattern=f"v{i}.*")
        record(
            actor=admin,
            operation=Operation.PUSH,
            resource_type=Resource.ARTIFACT,
            resource=f"team/app{i}:v1",
            project=team,
        )


def count(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200, path
    return len(queries)


def test_listing_pages_query_counts_are_pinned(team, django_assert_num_queries):
    clients = {}
    for name in ("dev", "guest", "padmin"):
        clients[name] = Client()
        clients[name].force_login(User.objects.get(username=name))
    grow(team, 3, 0)
    few = {key: count(clients[key[0]], key[1]) for key in pages(team)}
    grow(team, 9, 100)
    many = {key: count(clients[key[0]], key[1]) for key in pages(team)}
    assert many == few
    for (user, path), expected in pages(team).items():
        with django_assert_num_queries(expected):
            clients[user].get(path)
