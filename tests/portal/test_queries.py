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
        ("dev", "/admin/accounts/project/"): 5,
        ("dev", "/admin/accounts/project/?mine=1"): 5,
        ("dev", "/admin/registry/repository/?q=app"): 5,
        ("guest", f"/admin/registry/manifest/?repository__id__exact={repo.pk}"): 7,
        ("guest", "/admin/registry/manifest/"): 6,
        ("guest", "/admin/registry/tag/"): 5,
        ("guest", "/admin/accounts/member/"): 7,
        # A project as tabs, for its admin (who sees every tab): the session, the
        # user, the project, the user's role (read once for the request however
        # many tabs and actions are decided: accounts.access.roles_remembered),
        # then the tab's own rows (summary: the counts, the quota, the storage used).
        ("padmin", f"/projects/{team.pk}/"): 10,
        ("padmin", f"/projects/{team.pk}/repositories/"): 7,  # and the capped count
        (
            "padmin",
            f"/projects/{team.pk}/members/",
        ): 8,  # + the groups not yet members (the add-group form)
        ("padmin", f"/projects/{team.pk}/robots/"): 7,
        ("padmin", f"/projects/{team.pk}/immutable-rules/"): 6,
        ("padmin", f"/projects/{team.pk}/logs/"): 6,
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


def test_a_role_is_read_once_per_portal_request_and_never_kept_past_it(
    team, django_assert_num_queries
):
    from accounts import access
    from accounts.identity import actor_of_user

    padmin = actor_of_user(User.objects.get(username="padmin"))
    with django_assert_num_queries(2):  # no memo outside a portal request
        assert access.can(padmin, "member", "update", team)
        assert access.can(padmin, "robot", "create", team)
    with access.roles_remembered():
        with django_assert_num_queries(1):
            assert access.can(padmin, "member", "update", team)
            assert access.can(padmin, "robot", "create", team)
        Member.objects.filter(project=team, user_id=padmin.id).update(role=Role.GUEST)
        assert access.can(padmin, "member", "update", team)  # remembered
        access.forget_roles()
        assert not access.can(padmin, "member", "update", team)
    Member.objects.filter(project=team, user_id=padmin.id).update(role=Role.PROJECT_ADMIN)
    assert access.can(padmin, "member", "update", team)


def test_big_lists_count_to_a_cap_and_read_a_page_by_its_keys(
    team, monkeypatch, django_assert_num_queries
):
    """A changelist over a big table (accounts.adminsite.LargeTablePaginator):
    the count stops at the cap and the page says "more than"; page 1 and a
    later page run the same queries (the keys of the page, then its rows)."""
    from accounts.adminsite import LargeTablePaginator
    from registry.models import Manifest, Repository

    repo = Repository.objects.create(project=team, name="team/many")
    Manifest.objects.bulk_create(
        Manifest(
            repository=repo,
            digest=f"sha256:{i:064d}",
            media_type="application/vnd.oci.image.manifest.v1+json",
            payload=b"{}",
            size=i,
        )
        for i in range(130)
    )
    guest = Client()
    guest.force_login(User.objects.get(username="guest"))
    url = f"/admin/registry/manifest/?repository__id__exact={repo.pk}"
    page = guest.get(url).content.decode()
    assert "130 manifests" in page
    shown = [f"sha256:{i:064d}" for i in range(130) if f"sha256:{i:064d}" in page]
    assert shown == [f"sha256:{i:064d}" for i in range(80, 130)]  # newest first, 50 a page
    third = guest.get(url + "&p=3").content.decode()
    assert [f"sha256:{i:064d}" for i in range(130) if f"sha256:{i:064d}" in third] == [
        f"sha256:{i:064d}" for i in range(30)
    ]
    # session, user, count, keys, rows, tags, the filter's repository, roles
    for path in (url, url + "&p=2", url + "&p=3"):
        with django_assert_num_queries(8):
            assert guest.get(path).status_code == 200
    monkeypatch.setattr(LargeTablePaginator, "COUNT_CAP", 100)
    page = guest.get(url).content.decode()
    assert "more than 100 manifests" in page and "130 manifests" not in page
