"""The policy module's list decisions agree with its object decisions:
``restrict`` keeps exactly the rows ``can`` allows, for every kind of actor."""

from __future__ import annotations

import pytest

from accounts import access
from accounts.access import ANONYMOUS, Actor, Grant
from accounts.models import Member, Project, User
from accounts.rbac import PROJECT_RESOURCES
from accounts.services.auth import actor_for_user
from tests.roles import ROLE_USERS

pytestmark = pytest.mark.django_db(transaction=True)


def actors() -> dict[str, Actor]:
    out = {name: actor_for_user(User.objects.get(username=name)) for name in ROLE_USERS}
    out["outsider"] = actor_for_user(User.objects.get(username="outsider"))
    out["admin"] = actor_for_user(User.objects.get(pk=1))
    out["anonymous"] = ANONYMOUS
    out["robot"] = Actor(
        kind="robot",
        name="robot$team+ci",
        grants=(Grant("project", "team", "repository", "pull"),),
    )
    out["robot-all"] = Actor(
        kind="robot", name="robot$ci", grants=(Grant("project", "*", "repository", "*"),)
    )
    return out


def test_restrict_keeps_exactly_what_can_allows(team):
    projects = list(Project.objects.all())
    for who, actor in actors().items():
        for resource, actions in PROJECT_RESOURCES.items():
            for action in actions:
                allowed = {p.name for p in projects if access.can(actor, resource, action, p)}
                kept = set(
                    access.restrict(
                        Project.objects.all(), actor, resource, action, project_path="pk"
                    ).values_list("name", flat=True)
                )
                assert kept == allowed, (who, resource, action)


def test_restrict_follows_a_project_path(team):
    dev = actor_for_user(User.objects.get(username="dev"))
    members = access.restrict(Member.objects.all(), dev, "member", "list")
    assert {m.project.name for m in members} == {"team"}
    assert not access.restrict(Member.objects.all(), dev, "member", "create").exists()


def test_the_project_is_the_first_component(team):
    assert access.split_repository("team/app/web") == ("team", "app/web")
    assert access.split_repository("team") is None
    assert access.split_repository("team/") is None
    assert access.project_for_repository("team/app").name == "team"
    assert access.repository_actions(ANONYMOUS, "pub/app") == {"list", "pull"}
    assert access.repository_actions(ANONYMOUS, "nowhere/app") == frozenset()
