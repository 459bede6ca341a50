"""A project as tabs (portal/projects.py): the tabs each role gets, members
added, re-roled and removed through the member services, robots created with
the permission picker, their secret shown once with a Kubernetes image-pull
Secret, refreshed and disabled."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml
from django.test import Client, override_settings

from accounts.models import Member, Robot, Role, User
from accounts.rbac import PROJECT_RESOURCES, SERVED_PROJECT_RESOURCES
from audit.models import AuditEvent
from audit.services import flush
from portal.projects import permission_choices
from tests.portal.test_pages import as_user

pytestmark = pytest.mark.django_db(transaction=True)


def url(team, tab: str = "") -> str:
    return f"/projects/{team.pk}/{tab + '/' if tab else ''}"


def tabs_of(page: str) -> list[str]:
    return re.findall(r'id="berth-tab-([a-z-]+)"', page)


def test_each_role_gets_the_tabs_harbors_matrix_allows(team):
    expected = {
        "lguest": ["summary", "repositories"],
        "guest": ["summary", "repositories", "members", "robots"],
        "maint": ["summary", "repositories", "members", "robots", "immutable-rules"],
        "padmin": ["summary", "repositories", "members", "robots", "immutable-rules", "logs"],
    }
    for who, tabs in expected.items():
        page = as_user(who).get(url(team)).content.decode()
        assert tabs_of(page) == tabs, who
    # A limited guest cannot list members, even by typing the address.
    assert as_user("lguest").get(url(team, "members")).status_code == 403
    # A project one may not see does not exist.
    assert as_user("outsider").get(url(team)).status_code == 404
    assert Client().get(url(team)).status_code == 302  # to sign-in


def test_the_summary_counts_members_by_role(team):
    page = as_user("guest").get(url(team)).content.decode()
    assert "Project admin</th><td>1" in page
    assert "Limited guest</th><td>1" in page


def test_a_project_admin_adds_re_roles_and_removes_a_member(team):
    padmin = as_user("padmin")
    page = padmin.get(url(team, "members")).content.decode()
    assert '<option value="outsider">' in page  # the datalist: users not yet members
    assert '<option value="dev">' not in page
    r = padmin.post(url(team, "members"), {"action": "add", "username": "outsider", "role": 3})
    assert r.status_code == 302
    member = Member.objects.get(project=team, user__username="outsider")
    assert member.role == Role.GUEST
    padmin.post(url(team, "members"), {"action": "role", "member": member.pk, "role": 2})
    assert Member.objects.get(pk=member.pk).role == Role.DEVELOPER
    padmin.post(url(team, "members"), {"action": "remove", "member": member.pk})
    assert not Member.objects.filter(pk=member.pk).exists()
    flush()
    rows = AuditEvent.objects.filter(project_id=team.pk, resource_type="member")
    assert list(rows.order_by("pk").values_list("operation", "username")) == [
        ("create", "padmin"),
        ("update", "padmin"),
        ("delete", "padmin"),
    ]
    # A refusal of the service comes back on the page.
    r = padmin.post(url(team, "members"), {"action": "add", "username": "nobody", "role": 3})
    assert r.status_code == 200 and "no such user" in r.content.decode()


def test_a_project_admin_adds_a_group_whose_members_get_its_role(team):
    from accounts.models import GroupMembership, UserGroup

    group = UserGroup.objects.create(name="qa", type=UserGroup.Type.HTTP)
    outsider = User.objects.get(username="outsider")
    GroupMembership.objects.create(user=outsider, group=group)
    padmin = as_user("padmin")
    page = padmin.get(url(team, "members")).content.decode()
    assert "berth-group-add" in page
    assert f'<option value="{group.pk}">qa (HTTP)</option>' in page
    assert 'id="id_group_role"' in page and 'id="id_role"' in page  # no duplicate ids
    # The group's member reads nothing of the private project before.
    assert as_user("outsider").get(url(team, "repositories")).status_code == 404
    r = padmin.post(url(team, "members"), {"action": "add_group", "group": group.pk, "role": 2})
    assert r.status_code == 302
    member = Member.objects.get(project=team, group=group)
    assert member.role == Role.DEVELOPER
    page = padmin.get(url(team, "members")).content.decode()
    assert '<th scope="row">qa</th>' in page
    assert "qa (HTTP)" not in page  # a member now: not offered again
    assert as_user("outsider").get(url(team, "repositories")).status_code == 200
    flush()
    row = AuditEvent.objects.filter(project_id=team.pk, resource_type="member").last()
    assert (row.operation, row.username) == ("create", "padmin")
    # A group that is not offered (unknown id) is a form error, not a member.
    r = padmin.post(url(team, "members"), {"action": "add_group", "group": 99999, "role": 2})
    assert r.status_code == 200 and Member.objects.filter(project=team).count() == 6


def test_a_maintainer_sees_members_but_cannot_change_them(team):
    maint = as_user("maint")
    page = maint.get(url(team, "members")).content.decode()
    assert "berth-member-add" not in page and "dev" in page
    assert "berth-group-add" not in page
    outsider = User.objects.get(username="outsider")
    maint.post(url(team, "members"), {"action": "add", "username": "outsider", "role": 1})
    assert not Member.objects.filter(project=team, user=outsider).exists()


def test_the_permission_picker_offers_what_berth_has_grouped_by_resource():
    groups = dict(permission_choices())
    assert set(groups) == set(SERVED_PROJECT_RESOURCES) < set(PROJECT_RESOURCES)
    assert "label" not in groups and "scan" not in groups
    assert [v for v, _ in groups["repository"]][:2] == ["repository:create", "repository:delete"]


@override_settings(BERTH_EXTERNAL_URL="https://registry.example.com:8443")
def test_a_robot_secret_is_shown_once_with_a_kubernetes_pull_secret(team):
    padmin = as_user("padmin")
    r = padmin.post(
        url(team, "robots"),
        {
            "action": "create",
            "name": "ci",
            "duration": -1,
            "access": ["repository:pull", "artifact:read"],
            "namespace": "apps",
        },
    )
    assert r.status_code == 200
    assert r["Cache-Control"] == "no-store"
    page = r.content.decode()
    secret = re.search(r'id="berth-secret-value">([^<]+)<', page).group(1)
    robot = Robot.objects.get(name="robot$team+ci")
    (grant,) = robot.permissions
    assert (grant["kind"], grant["namespace"]) == ("project", "team")
    assert [(a["resource"], a["action"]) for a in grant["access"]] == [
        ("repository", "pull"),
        ("artifact", "read"),
    ]
    href = re.search(
        r'id="berth-pull-secret"[^>]* href="data:application/yaml;base64,([^"]+)"', page
    )
    document = yaml.safe_load(base64.b64decode(href.group(1)))
    assert document["type"] == "kubernetes.io/dockerconfigjson"
    assert document["metadata"] == {"name": "robot-team-ci", "namespace": "apps"}
    config = json.loads(base64.b64decode(document["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example.com:8443"]["username"] == "robot$team+ci"
    assert config["auths"]["registry.example.com:8443"]["password"] == secret
    assert "kubectl apply -f robot-team-ci.yaml" in page
    # Never shown again.
    assert secret not in padmin.get(url(team, "robots")).content.decode()
    # Refresh: a new secret, shown once; disable.
    r = padmin.post(url(team, "robots"), {"action": "refresh", "robot": robot.pk, "namespace": "x"})
    fresh = re.search(r'id="berth-secret-value">([^<]+)<', r.content.decode()).group(1)
    assert fresh != secret
    padmin.post(url(team, "robots"), {"action": "disable", "robot": robot.pk})
    assert Robot.objects.get(pk=robot.pk).disabled


def test_a_bad_namespace_or_no_permission_is_refused_on_the_page(team):
    padmin = as_user("padmin")
    r = padmin.post(
        url(team, "robots"),
        {"action": "create", "name": "ci", "duration": -1, "access": [], "namespace": "Bad_NS"},
    )
    assert r.status_code == 200
    assert not Robot.objects.filter(name="robot$team+ci").exists()
    assert "Not a Kubernetes namespace name." in r.content.decode()
    # A guest sees robots but may not create, refresh or disable them.
    guest = as_user("guest")
    assert "berth-robot-add" not in guest.get(url(team, "robots")).content.decode()


def test_the_repositories_tab_is_paged(team):
    """A project may hold thousands of repositories: 50 a page, each with its
    artifact count."""
    from registry.models import Repository
    from tests.accounts.test_admin import add_content

    add_content(team, 60)
    client = Client()
    client.force_login(User.objects.get(username="guest"))
    url = f"/projects/{team.pk}/repositories/"
    first = client.get(url).content.decode()
    names = sorted(Repository.objects.filter(project=team).values_list("name", flat=True))
    assert all(f">{n}</a>" in first for n in names[:50])
    assert not any(f">{n}</a>" in first for n in names[50:])
    assert 'href="?page=2" rel="next"' in first and "Page 1 of 2" in first
    second = client.get(url + "?page=2").content.decode()
    assert all(f">{n}</a>" in second for n in names[50:])
    assert "<td>1</td>" in second  # each repository's one artifact
