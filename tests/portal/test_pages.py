"""The portal's own pages and the admin opened to every signed-in user: sign-in
at ``/``, the dashboard, search by any part of a name, a repository's artifacts
with their tags and pull commands, deletes only where Harbor's matrix allows
them, and the defects issue 15 lists."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Member, Project, Role, User
from audit.models import AuditEvent
from audit.services import flush
from registry.models import Manifest, Repository, Tag
from tests.registry.helpers import InProcess
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

MANIFESTS = "/admin/registry/manifest/"
TAGS = "/admin/registry/tag/"
REPOSITORIES = "/admin/registry/repository/"
PROJECTS = "/admin/accounts/project/"


def as_user(username: str, **headers: str) -> Client:
    client = Client(**headers)
    client.force_login(User.objects.get(username=username))
    return client


@pytest.fixture
def content(team, v2):
    """`team-a/app:v1` (pushed by the protocol) in project `team-a`, where `dev`
    is a developer and `guest` a guest; `team/app:v1` in `team`."""
    team_a = Project.objects.create(name="team-a", owner_id=1)
    for name, role in (("dev", Role.DEVELOPER), ("guest", Role.GUEST), ("maint", Role.MAINTAINER)):
        Member.objects.create(project=team_a, user=User.objects.get(username=name), role=role)
    client = InProcess(v2)
    client.push_image("team-a/app", "v1")
    client.push_image("team/app", "v1")
    return Repository.objects.get(name="team-a/app")


def test_sign_in_at_the_root_lands_on_the_dashboard(content):
    client = Client()
    page = client.get("/")
    assert page.status_code == 200
    assert 'name="username"' in page.content.decode()
    r = client.post("/", {"username": "dev", "password": PASSWORD})
    assert r.status_code == 302
    assert r["Location"] == "/"
    dashboard = client.get("/").content.decode()
    assert 'id="berth-my-projects"' in dashboard
    flush()  # sign-ins are audited as every login is (buffered, like /c/login's)
    login = AuditEvent.objects.get(operation="login")
    assert (login.username, login.resource_type, login.result) == ("dev", "session", "success")
    assert ">team-a</a>" in dashboard
    assert 'id="berth-search-q"' in dashboard


def test_sign_in_refuses_wrong_passwords_and_robots_and_is_throttled(content, settings):
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 2
    for _ in range(2):
        r = Client().post("/", {"username": "dev", "password": "Wrong1234"})
        assert r.status_code == 200
        assert "Please enter a correct username and password" in r.content.decode()
    r = Client().post("/", {"username": "dev", "password": PASSWORD})
    assert r.status_code == 200
    assert "too many failed logins" in r.content.decode()
    assert "_auth_user_id" not in r.wsgi_request.session


def test_admin_without_its_slash_redirects():
    r = Client().get("/admin")
    assert r.status_code == 301
    assert r["Location"] == "/admin/"


def test_search_finds_any_part_of_a_name(content):
    client = as_user("dev")
    page = client.get("/search/?q=app").content.decode()
    assert ">team-a/app</a>" in page
    assert ">team/app</a>" in page  # dev is a developer of `team` too
    assert ">team-a</a>" in client.get("/search/?q=m-a").content.decode()
    # The admin's changelists search the same way.
    assert "team-a/app" in client.get(f"{REPOSITORIES}?q=app").content.decode()
    assert ">team-a<" in client.get(f"{PROJECTS}?q=eam-").content.decode()


def test_search_shows_only_what_the_user_may_see(content):
    page = as_user("outsider").get("/search/?q=app").content.decode()
    assert "team-a/app" not in page
    assert "No repository matches." in page


def test_artifacts_show_their_tags_and_pull_commands(content, settings):
    client = as_user("guest")
    listing = client.get(f"{MANIFESTS}?repository__id__exact={content.pk}").content.decode()
    manifest = Manifest.objects.get(repository=content)
    assert f">{manifest.digest}</a>" in listing
    assert '<td class="field-tag_names">v1</td>' in listing
    page = client.get(f"{MANIFESTS}{manifest.pk}/change/").content.decode()
    assert 'data-copy="docker pull testserver/team-a/app:v1"' in page
    assert f'data-copy="docker pull testserver/team-a/app@{manifest.digest}"' in page
    settings.BERTH_EXTERNAL_URL = "https://registry.example.com"
    page = client.get(f"{MANIFESTS}{manifest.pk}/change/").content.decode()
    assert 'data-copy="docker pull registry.example.com/team-a/app:v1"' in page
    # Tags are named by their artifact's digest, not `1@sha256:…`.
    tags = client.get(TAGS).content.decode()
    assert f"{content.pk}@sha256" not in tags
    assert manifest.digest in tags


def test_a_guest_sees_a_tag_but_cannot_delete_it(content):
    tag = Tag.objects.get(repository=content, name="v1")
    client = as_user("guest")
    page = client.get(f"{TAGS}{tag.pk}/change/").content.decode()
    assert "v1" in page
    assert "deletelink" not in page
    assert client.post(f"{TAGS}{tag.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Tag.objects.filter(pk=tag.pk).exists()


def test_a_maintainer_deletes_a_tag_through_the_service(content):
    tag = Tag.objects.get(repository=content, name="v1")
    client = as_user("maint")
    assert "deletelink" in client.get(f"{TAGS}{tag.pk}/change/").content.decode()
    r = client.post(f"{TAGS}{tag.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Tag.objects.filter(pk=tag.pk).exists()
    event = AuditEvent.objects.get(operation="delete", resource_type="tag")
    assert (event.username, event.resource) == ("maint", "team-a/app:v1")


def test_an_immutable_tag_refusal_is_a_message_not_an_error(content):
    from accounts.services.auth import actor_for_user
    from registry.services import immutability

    immutability.rule_create(
        actor=actor_for_user(User.objects.get(pk=1)),
        project=Project.objects.get(name="team-a"),
        data={"tag_selectors": [{"pattern": "v*"}]},
    )
    tag = Tag.objects.get(repository=content, name="v1")
    r = as_user("maint").post(f"{TAGS}{tag.pk}/delete/", {"post": "yes"}, follow=True)
    assert r.status_code == 200
    assert "immutable" in r.content.decode()
    assert Tag.objects.filter(pk=tag.pk).exists()


def test_robot_help_text_shows_its_placeholders(team):
    page = as_user("padmin").get("/admin/accounts/robot/add/").content.decode()
    assert "robot$&lt;project&gt;+&lt;name&gt;" in page


def test_member_added_message_names_the_user_and_project(team):
    User.objects.create_user("newcomer", password=PASSWORD)
    r = as_user("padmin").post(
        "/admin/accounts/member/add/",
        {"project": team.pk, "username": "newcomer", "role": Role.DEVELOPER},
        follow=True,
    )
    page = r.content.decode()
    assert "newcomer in team" in page
    member = Member.objects.get(user__username="newcomer")
    assert f"{member.user_id}@{member.project_id}" not in page


def test_password_change_goes_through_the_service(team):
    from accounts.services.auth import check_credentials

    client = as_user("dev")
    change = "/admin/password_change/"
    weak = client.post(
        change, {"old_password": PASSWORD, "new_password1": "weak", "new_password2": "weak"}
    )
    assert weak.status_code == 200
    assert "password must have 8-128 characters" in weak.content.decode()
    r = client.post(
        change,
        {"old_password": PASSWORD, "new_password1": "Another123", "new_password2": "Another123"},
    )
    assert r.status_code == 302
    assert check_credentials(username="dev", password="Another123") is not None
    event = AuditEvent.objects.get(resource_type="user", operation="update")
    assert (event.username, event.resource, event.detail) == ("dev", "dev", {"field": "password"})
    assert 'id="berth-my-projects"' in client.get("/").content.decode()  # still signed in


def test_sign_out_comes_back_to_sign_in(team):
    client = as_user("dev")
    r = client.post("/admin/logout/")
    assert r.status_code == 302
    assert r["Location"] == "/"
    assert 'name="username"' in client.get("/").content.decode()
