"""Groups are members: a user's role in a project is the highest of their own
and their groups' roles, in every decision of the policy module — objects,
lists, the token service's grants and the API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.utils import DatabaseError

from accounts import access
from accounts.models import GroupMembership, Member, Project, Role, User, UserGroup
from accounts.services.auth import actor_for_user
from tests.roles import api, granted

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def groups(team):
    """`devs` (developer in team) and `leads` (project admin in `lab`); `guest`
    is in devs, `outsider` in both."""
    lab = Project.objects.create(name="lab", owner_id=1)
    devs = UserGroup.objects.create(name="devs", type=UserGroup.Type.HTTP)
    leads = UserGroup.objects.create(
        name="leads", type=UserGroup.Type.LDAP, ldap_group_dn="cn=leads,dc=example,dc=org"
    )
    Member.objects.create(project=team, group=devs, role=Role.DEVELOPER)
    Member.objects.create(project=lab, group=leads, role=Role.PROJECT_ADMIN)
    for name, group in (("guest", devs), ("outsider", devs), ("outsider", leads)):
        GroupMembership.objects.create(user=User.objects.get(username=name), group=group)
    return {"devs": devs, "leads": leads, "team": team, "lab": lab}


def actor(name):
    return actor_for_user(User.objects.get(username=name))


def test_the_highest_of_own_and_group_roles(groups):
    team = groups["team"]
    # guest: own GUEST, group DEVELOPER → developer.
    assert access.member_role(actor("guest"), team) == Role.DEVELOPER
    assert access.can(actor("guest"), "repository", "push", team)
    # padmin: own PROJECT_ADMIN is higher than nothing from groups.
    assert access.member_role(actor("padmin"), team) == Role.PROJECT_ADMIN
    # outsider: no own membership; the groups give developer in team, admin in lab.
    assert access.member_role(actor("outsider"), team) == Role.DEVELOPER
    assert access.member_role(actor("outsider"), groups["lab"]) == Role.PROJECT_ADMIN
    assert access.memberships(actor("outsider")) == {
        team.pk: Role.DEVELOPER,
        groups["lab"].pk: Role.PROJECT_ADMIN,
    }
    assert access.memberships(actor("guest"))[team.pk] == Role.DEVELOPER
    # A user in no group keeps exactly their own role.
    assert access.member_role(actor("lguest"), team) == Role.LIMITED_GUEST
    assert not access.can(actor("lguest"), "repository", "push", team)


def test_lists_follow_group_roles(groups):
    outsider = actor("outsider")
    public = set(Project.objects.filter(public=True).values_list("name", flat=True))
    assert (
        set(access.visible_projects(outsider).values_list("name", flat=True))
        == {
            "team",
            "lab",
        }
        | public
    )
    pushable = access.projects_where(outsider, "repository", "push")
    assert set(pushable.values_list("name", flat=True)) == {"team", "lab"}
    deletable = access.projects_where(outsider, "project", "delete")
    assert set(deletable.values_list("name", flat=True)) == {"lab"}


def test_leaving_the_group_takes_the_role_away(groups):
    GroupMembership.objects.filter(user__username="outsider").delete()
    assert access.member_role(actor("outsider"), groups["team"]) is None
    pullable = access.projects_where(actor("outsider"), "repository", "pull")
    assert not pullable.filter(public=False).exists()


def test_one_query_for_a_role_and_for_the_memberships(groups, django_assert_num_queries):
    outsider = actor("outsider")
    with django_assert_num_queries(1):
        access.member_role(outsider, groups["team"])
    with django_assert_num_queries(1):
        access.memberships(outsider)
    with django_assert_num_queries(1):
        list(access.projects_where(outsider, "repository", "pull"))


def test_the_token_service_grants_a_group_role(groups):
    assert granted("outsider", "repository:team/app:pull,push") == ["pull", "push"]
    assert granted("outsider", "repository:lab/app:pull,push,delete") == [
        "delete",
        "pull",
        "push",
    ]
    GroupMembership.objects.filter(user__username="outsider", group=groups["devs"]).delete()
    assert granted("outsider", "repository:team/app:pull,push") == []


def test_the_api_answers_with_group_roles(groups):
    r = api("outsider").get("/api/v2.0/projects")
    assert r.status_code == 200
    roles = {p["name"]: p["current_user_role_id"] for p in r.json()}
    assert roles == {"team": Role.DEVELOPER, "lab": Role.PROJECT_ADMIN, "pub": 0, "library": 0}
    # A project admin through a group administers members.
    r = api("outsider").get(f"/api/v2.0/projects/{groups['lab'].pk}/members")
    assert r.status_code == 200
    assert [(m["entity_name"], m["entity_type"]) for m in r.json()] == [("leads", "g")]
    assert api("outsider").get(f"/api/v2.0/projects/{groups['team'].pk}/members").status_code == 200


def test_a_member_is_a_user_or_a_group_never_both_nor_neither(groups):
    team = groups["team"]
    user = User.objects.get(username="outsider")
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        Member.objects.create(project=team, user=user, group=groups["devs"], role=Role.GUEST)
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        Member.objects.create(project=team, role=Role.GUEST)
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(project=team, group=groups["devs"], role=Role.GUEST)


def test_an_access_token_holds_what_the_users_groups_give(groups):
    from accounts.services import pats

    outsider = actor("outsider")
    perms = [
        {
            "kind": "project",
            "namespace": "team",
            "access": [
                {"resource": "repository", "action": "pull"},
                {"resource": "repository", "action": "push"},
            ],
        }
    ]
    # The token may name push: the user holds it through devs.
    _, secret = pats.token_create(actor=outsider, name="ci", permissions=perms)
    assert granted("outsider", "repository:team/app:pull,push", password=secret) == [
        "pull",
        "push",
    ]
    # Out of the group, the token's push goes with the user's.
    GroupMembership.objects.filter(user__username="outsider", group=groups["devs"]).delete()
    assert granted("outsider", "repository:team/app:pull,push", password=secret) == []
