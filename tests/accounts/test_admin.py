"""The Django admin as the management surface: who may enter, what each user sees
and changes there, that changes go through the services, and the query count of
every changelist."""

from __future__ import annotations

import base64
import re

import pytest
import yaml
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.adminsite import AdminScope
from accounts.models import Member, Project, Robot, Role, User
from accounts.services.auth import actor_for_user, check_credentials
from accounts.services.secrets import check_secret, hash_secret
from audit.models import AuditEvent
from registry.models import Blob, ImmutableRule, Manifest, Repository, Tag
from registry.services import immutability
from tests.conftest import ADMIN_PASSWORD
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERS = "/admin/accounts/member/"
ROBOTS = "/admin/accounts/robot/"
USERS = "/admin/accounts/user/"
PROJECTS = "/admin/accounts/project/"
REPOSITORIES = "/admin/registry/repository/"
MANIFESTS = "/admin/registry/manifest/"
TAGS = "/admin/registry/tag/"
BLOBS = "/admin/registry/blob/"
PULL = [{"resource": "repository", "action": "pull", "effect": "allow"}]


def as_user(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def make_robot(project: Project, name: str) -> Robot:
    return Robot.objects.create(
        name=f"robot${project.name}+{name}",
        project=project,
        secret_hash=hash_secret("Unused123"),
        permissions=[{"kind": "project", "namespace": project.name, "access": PULL}],
    )


def add_content(project: Project, n: int, start: int = 0) -> None:
    """``n`` repositories in ``project``, each with a manifest, a tag and a blob."""
    for i in range(start, start + n):
        repo = Repository.objects.create(project=project, name=f"{project.name}/app{i}")
        manifest = Manifest.objects.create(
            repository=repo,
            digest=f"sha256:{project.pk:02d}{i:062d}",
            media_type="application/vnd.oci.image.manifest.v1+json",
            payload=b'{"schemaVersion": 2}',
            size=20,
        )
        Tag.objects.create(repository=repo, name="v1", manifest=manifest)
        Blob.objects.create(digest=f"sha256:b{project.pk:02d}{i:061d}", size=i)


@pytest.fixture
def other(team):
    """A second private project, administered by `oadmin`, with a member and a robot."""
    other = Project.objects.create(name="other", owner_id=1)
    for name, role in (("oadmin", Role.PROJECT_ADMIN), ("ouser", Role.DEVELOPER)):
        user = User.objects.create_user(name, password=PASSWORD)
        Member.objects.create(project=other, user=user, role=role)
    make_robot(other, "deploy")
    make_robot(team, "ci")
    return other


# who may enter ----------------------------------------------------------------


def login(username: str, password: str = PASSWORD):
    return Client().post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.mark.parametrize(
    ("username", "password"), [("admin", ADMIN_PASSWORD), ("padmin", PASSWORD)]
)
def test_sysadmin_and_project_admin_log_in(team, username, password):
    r = login(username, password)
    assert r.status_code == 302
    assert r["Location"] == "/admin/"


@pytest.mark.parametrize("username", ["maint", "dev", "guest", "lguest", "outsider"])
def test_every_user_signs_in_to_the_admin(team, username):
    """The admin is the portal: every active user signs in (issue 15)."""
    r = login(username)
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    assert r.wsgi_request.session["_auth_user_id"] == str(User.objects.get(username=username).pk)


def test_a_disabled_user_cannot_sign_in(team):
    User.objects.filter(username="dev").update(is_active=False)
    r = login("dev")
    assert r.status_code == 200
    assert "_auth_user_id" not in r.wsgi_request.session


def test_wrong_password_and_robots_are_refused_at_login(other):
    robot = Robot.objects.get(name="robot$team+ci")
    for username, password in (("padmin", "Wrong1234"), (robot.name, "Unused123")):
        r = login(username, password)
        assert r.status_code == 200
        assert "Please enter a correct username and password" in r.content.decode()


def test_admin_login_is_throttled_like_every_login(team, settings):
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 2
    for _ in range(2):
        assert login("padmin", "Wrong1234").status_code == 200
    r = login("padmin")
    assert r.status_code == 200
    assert "too many failed logins" in r.content.decode()
    assert "_auth_user_id" not in r.wsgi_request.session


def test_a_guest_sees_but_changes_nothing(other):
    """A guest of `team` reads its members and robots (Harbor's matrix), and may
    neither add, change nor delete them; users and rules stay out of reach."""
    client = as_user("guest")
    member = Member.objects.get(user__username="dev")
    assert ">dev<" in client.get(MEMBERS).content.decode()
    page = client.get(f"{MEMBERS}{member.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"{MEMBERS}{member.pk}/change/", {"role": 1}).status_code == 403
    for path in (
        f"{MEMBERS}add/",
        f"{MEMBERS}{member.pk}/delete/",
        USERS,
        "/admin/registry/immutablerule/",
    ):
        assert client.get(path).status_code == 403, path
    assert Member.objects.get(pk=member.pk).role == Role.DEVELOPER


def test_project_admin_sees_only_the_models_it_may_use(other):
    client = as_user("padmin")
    index = client.get("/admin/").content.decode()
    for model in ("Members", "Robots", "Projects", "Repositories", "Manifests", "Tags"):
        assert f">{model}</a>" in index
    assert ">Users</a>" not in index
    assert ">Blobs</a>" not in index
    assert client.get(USERS).status_code == 403
    assert client.get(f"{USERS}add/").status_code == 403
    assert client.get(BLOBS).status_code == 403
    assert client.get(f"{PROJECTS}add/").status_code == 200  # projects: "everyone"


def test_project_admin_changelists_hold_only_its_projects(other):
    client = as_user("padmin")
    members = client.get(MEMBERS).content.decode()
    for name in ("padmin", "maint", "dev", "guest", "lguest"):
        assert f">{name}<" in members
    assert "oadmin" not in members
    assert "ouser" not in members
    robots = client.get(ROBOTS).content.decode()
    assert "robot$team+ci" in robots
    assert "robot$other+deploy" not in robots
    projects = client.get(PROJECTS).content.decode()
    assert ">team<" in projects
    # The project page links to its members and robots, filtered.
    team = Project.objects.get(name="team")
    page = client.get(f"{PROJECTS}{team.pk}/change/").content.decode()
    assert f"{MEMBERS}?project__id__exact={team.pk}" in page
    filtered = client.get(f"{MEMBERS}?project__id__exact={team.pk}")
    assert filtered.status_code == 200
    assert ">padmin<" in filtered.content.decode()
    assert client.get(f"{ROBOTS}?project__id__exact={team.pk}").status_code == 200
    assert ">other<" not in projects  # private, not theirs
    assert ">pub<" in projects  # public: everyone sees it


def test_a_guest_role_elsewhere_reads_but_does_not_manage(other):
    """padmin becomes a guest of `other`: it sees other's members, changes none."""
    Member.objects.create(project=other, user=User.objects.get(username="padmin"), role=Role.GUEST)
    client = as_user("padmin")
    assert ">ouser<" in client.get(MEMBERS).content.decode()
    ouser = Member.objects.get(user__username="ouser")
    assert 'name="_save"' not in client.get(f"{MEMBERS}{ouser.pk}/change/").content.decode()
    assert client.post(f"{MEMBERS}{ouser.pk}/change/", {"role": 1}).status_code == 403
    assert client.post(f"{MEMBERS}{ouser.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Member.objects.get(pk=ouser.pk).role == Role.DEVELOPER


def test_scope_agrees_with_access_can(other):
    """Model-level answers from the matrix, object-level from accounts.access.can."""
    from accounts import access
    from accounts.rbac import PROJECT_PERMISSIONS
    from accounts.services.auth import actor_for_user

    user = User.objects.get(username="padmin")
    request = RequestFactory().get("/admin/")
    request.user = user
    scope = AdminScope.of(request)
    actor = actor_for_user(user)
    team = Project.objects.get(name="team")
    for resource, actions in PROJECT_PERMISSIONS[Role.PROJECT_ADMIN].items():
        for action in actions:
            assert scope.may(resource, action) is access.can(actor, resource, action, team)
            assert scope.may_on(resource, action, team) is access.can(actor, resource, action, team)
            assert scope.may_on(resource, action, other) is False
    assert list(scope.projects("member", "create")) == [team]


# members ----------------------------------------------------------------------


def test_project_admin_adds_a_member(other):
    client = as_user("padmin")
    team = Project.objects.get(name="team")
    form = client.get(f"{MEMBERS}add/").content.decode()
    assert f'<option value="{team.pk}">team</option>' in form
    assert f'<option value="{other.pk}">' not in form
    r = client.post(
        f"{MEMBERS}add/", {"project": team.pk, "username": "outsider", "role": Role.DEVELOPER}
    )
    assert r.status_code == 302
    assert Member.objects.get(project=team, user__username="outsider").role == Role.DEVELOPER
    # The service's refusals are form errors.
    again = client.post(
        f"{MEMBERS}add/", {"project": team.pk, "username": "outsider", "role": Role.GUEST}
    )
    assert again.status_code == 200
    assert "outsider is already a member" in again.content.decode()
    nobody = client.post(
        f"{MEMBERS}add/", {"project": team.pk, "username": "nobody", "role": Role.GUEST}
    )
    assert nobody.status_code == 200
    assert "no such user" in nobody.content.decode()


def test_project_admin_changes_a_role_and_removes_a_member(other):
    client = as_user("padmin")
    dev = Member.objects.get(project__name="team", user__username="dev")
    r = client.post(f"{MEMBERS}{dev.pk}/change/", {"role": Role.MAINTAINER})
    assert r.status_code == 302
    dev.refresh_from_db()
    assert dev.role == Role.MAINTAINER
    r = client.post(f"{MEMBERS}{dev.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Member.objects.filter(pk=dev.pk).exists()


def test_member_cannot_be_added_to_another_project(other):
    """IDOR: another project's id in the add form is refused, nothing is written."""
    r = as_user("padmin").post(
        f"{MEMBERS}add/", {"project": other.pk, "username": "outsider", "role": Role.PROJECT_ADMIN}
    )
    assert r.status_code == 200
    assert "Select a valid choice" in r.content.decode()
    assert not Member.objects.filter(project=other, user__username="outsider").exists()


def test_member_cannot_be_moved_into_another_project(other):
    """IDOR: the change form ignores a project id; the member stays where it was."""
    dev = Member.objects.get(project__name="team", user__username="dev")
    r = as_user("padmin").post(
        f"{MEMBERS}{dev.pk}/change/",
        {"project": other.pk, "user": User.objects.get(username="oadmin").pk, "role": dev.role},
    )
    assert r.status_code == 302
    moved = Member.objects.get(pk=dev.pk)
    assert (moved.project_id, moved.user.username, moved.role) == (dev.project_id, "dev", dev.role)
    assert not Member.objects.filter(project=other, user__username="dev").exists()


def test_another_projects_member_cannot_be_changed_or_deleted(other):
    """IDOR: rows of a project the user does not administer do not exist for them."""
    client = as_user("padmin")
    ouser = Member.objects.get(project=other, user__username="ouser")
    r = client.post(f"{MEMBERS}{ouser.pk}/change/", {"role": Role.PROJECT_ADMIN})
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    r = client.post(f"{MEMBERS}{ouser.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    r = client.post(
        MEMBERS, {"action": "delete_selected", "_selected_action": [ouser.pk], "post": "yes"}
    )
    assert r.status_code == 302
    ouser.refresh_from_db()
    assert ouser.role == Role.DEVELOPER


# robots -----------------------------------------------------------------------


def shown_secrets(r) -> list[str]:
    """The secrets on the page that answers, which is never cached."""
    assert r.status_code == 200
    assert "no-store" in r["Cache-Control"].split(", ")
    return re.findall(r'id="berth-secret-value(?:-\d+)?">([^<]+)<', r.content.decode())


def assert_kept_nowhere(client: Client, secret: str) -> None:
    """Not in the session nor a cookie (where Django's messages live), nor on the
    next page: "secrets are never logged, stored or returned twice"."""
    assert secret not in str(dict(client.session))
    assert secret not in client.cookies.output()
    assert secret not in client.get(ROBOTS).content.decode()


def test_robot_created_in_the_admin_shows_its_secret_once(other):
    client = as_user("padmin")
    team = Project.objects.get(name="team")
    r = client.post(
        f"{ROBOTS}add/",
        {
            "project": team.pk,
            "robot_name": "builder",
            "description": "CI builds",
            "duration": "-1",
            "project_access": ["repository:pull", "repository:push"],
            "namespace": "apps",
        },
    )
    (secret,) = shown_secrets(r)
    robot = Robot.objects.get(name="robot$team+builder")
    assert check_secret(secret, robot.secret_hash)
    assert secret not in robot.secret_hash
    assert robot.creator == "user:padmin"
    assert robot.permissions == [
        {
            "kind": "project",
            "namespace": "team",
            "access": [
                {"resource": "repository", "action": "pull", "effect": "allow"},
                {"resource": "repository", "action": "push", "effect": "allow"},
            ],
        }
    ]
    assert check_credentials(username=robot.name, password=secret) is not None
    # The Kubernetes image-pull Secret, as the project's robots tab offers it.
    page = r.content.decode()
    href = re.search(
        r'id="berth-pull-secret"[^>]* href="data:application/yaml;base64,([^"]+)"', page
    )
    document = yaml.safe_load(base64.b64decode(href.group(1)))
    assert document["metadata"] == {"name": "robot-team-builder", "namespace": "apps"}
    assert "kubectl apply -f robot-team-builder.yaml" in page
    assert_kept_nowhere(client, secret)
    assert secret not in client.get(f"{ROBOTS}{robot.pk}/change/").content.decode()


def test_robot_add_form_refuses_a_bad_namespace(other):
    team = Project.objects.get(name="team")
    r = as_user("padmin").post(
        f"{ROBOTS}add/",
        {"project": team.pk, "robot_name": "b", "duration": "-1", "namespace": "Not_A_Label"},
    )
    assert r.status_code == 200
    assert "Not a Kubernetes namespace name." in r.content.decode()
    assert not Robot.objects.filter(name="robot$team+b").exists()


def test_robot_refresh_secret_action(other):
    client = as_user("padmin")
    make_robot(Project.objects.get(name="team"), "deploy")
    robots = list(Robot.objects.filter(project__name="team").order_by("name"))
    r = client.post(
        ROBOTS, {"action": "refresh_secret", "_selected_action": [robot.pk for robot in robots]}
    )
    secrets = shown_secrets(r)
    assert len(secrets) == len(robots) == 2
    for robot in robots:
        robot.refresh_from_db()
        assert [check_secret(secret, robot.secret_hash) for secret in secrets].count(True) == 1
    for secret in secrets:
        assert_kept_nowhere(client, secret)


def test_robot_refused_by_the_service_is_a_form_error(other):
    client = as_user("padmin")
    team = Project.objects.get(name="team")
    r = client.post(
        f"{ROBOTS}add/",
        {
            "project": team.pk,
            "robot_name": "ci",
            "duration": "-1",
            "project_access": ["repository:pull"],
        },
    )
    assert r.status_code == 200
    assert "robot robot$team+ci already exists" in r.content.decode()
    r = client.post(f"{ROBOTS}add/", {"project": team.pk, "robot_name": "empty", "duration": "-1"})
    assert r.status_code == 200
    assert "permissions must be a non-empty list" in r.content.decode()
    assert not Robot.objects.filter(name="robot$team+empty").exists()


def test_robot_cannot_be_created_in_or_moved_to_another_project(other):
    """IDOR for robots: another project's id is refused on add, ignored on change,
    and another project's robot is out of reach."""
    client = as_user("padmin")
    r = client.post(
        f"{ROBOTS}add/",
        {
            "project": other.pk,
            "robot_name": "sneaky",
            "duration": "-1",
            "project_access": ["repository:pull"],
        },
    )
    assert r.status_code == 200
    assert "Select a valid choice" in r.content.decode()
    assert not Robot.objects.filter(name__contains="sneaky").exists()
    # No project: a system robot, for sysadmins only.
    r = client.post(
        f"{ROBOTS}add/",
        {"robot_name": "sneaky", "duration": "-1", "project_access": ["repository:pull"]},
    )
    assert r.status_code == 200
    assert not Robot.objects.filter(name__contains="sneaky").exists()
    ci = Robot.objects.get(name="robot$team+ci")
    r = client.post(
        f"{ROBOTS}{ci.pk}/change/",
        {
            "project": other.pk,
            "name": "robot$other+ci",
            "duration": "-1",
            "project_access": ["repository:pull"],
        },
    )
    assert r.status_code == 302
    ci.refresh_from_db()
    assert (ci.name, ci.project.name) == ("robot$team+ci", "team")
    deploy = Robot.objects.get(name="robot$other+deploy")
    r = client.post(f"{ROBOTS}{deploy.pk}/change/", {"disabled": "on", "duration": "-1"})
    assert r.status_code == 302
    assert r["Location"] == "/admin/"
    deploy.refresh_from_db()
    assert not deploy.disabled


def test_sysadmin_creates_a_system_robot(other):
    r = as_user("admin").post(
        f"{ROBOTS}add/",
        {
            "robot_name": "gc",
            "duration": "30",
            "system_access": ["garbage-collection:create"],
            "project_access": ["repository:pull"],
        },
    )
    (secret,) = shown_secrets(r)
    robot = Robot.objects.get(name="robot$gc")
    assert check_secret(secret, robot.secret_hash)
    assert robot.project is None
    assert robot.expires_at is not None
    assert {p["kind"]: p["namespace"] for p in robot.permissions} == {"project": "*", "system": "/"}


# projects ---------------------------------------------------------------------


def test_project_admin_changes_its_project(other):
    client = as_user("padmin")
    team = Project.objects.get(name="team")
    r = client.post(f"{PROJECTS}{team.pk}/change/", {"public": "on", "name": "renamed"})
    assert r.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.public) == ("team", True)
    r = client.post(f"{PROJECTS}{other.pk}/change/", {"public": "on"})
    assert r["Location"] == "/admin/"
    other.refresh_from_db()
    assert other.public is False


def test_project_is_deleted_only_when_empty(other):
    client = as_user("oadmin")
    add_content(other, 1)
    page = client.get(f"{PROJECTS}{other.pk}/delete/").content.decode()
    assert "<title>Cannot delete project" in page
    r = client.post(f"{PROJECTS}{other.pk}/delete/", {"post": "yes"})
    assert r.status_code == 200
    assert Project.objects.filter(pk=other.pk).exists()
    Tag.objects.filter(repository__project=other).delete()
    Manifest.objects.filter(repository__project=other).delete()
    Repository.objects.filter(project=other).delete()
    r = client.post(f"{PROJECTS}{other.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Project.objects.filter(pk=other.pk).exists()
    assert not Robot.objects.filter(name="robot$other+deploy").exists()


def test_project_created_in_the_admin_goes_through_the_service(other, settings):
    client = as_user("padmin")
    r = client.post(f"{PROJECTS}add/", {"name": "fresh"})
    assert r.status_code == 302
    fresh = Project.objects.get(name="fresh")
    assert fresh.owner.username == "padmin"
    assert Member.objects.get(project=fresh).role == Role.PROJECT_ADMIN
    bad = client.post(f"{PROJECTS}add/", {"name": "Bad Name"})
    assert bad.status_code == 200
    assert "project name must be lower-case" in bad.content.decode()
    settings.BERTH_PROJECT_CREATION = "adminonly"
    assert client.get(f"{PROJECTS}add/").status_code == 403


# content ----------------------------------------------------------------------


def test_content_is_read_only_and_scoped(other):
    team = Project.objects.get(name="team")
    add_content(team, 2)
    add_content(other, 2, start=10)
    client = as_user("padmin")
    repos = client.get(REPOSITORIES).content.decode()
    assert "team/app0" in repos
    assert "other/app10" not in repos
    assert "team/app0" in client.get(TAGS).content.decode()
    manifest = Manifest.objects.filter(repository__project=team).first()
    page = client.get(f"{MANIFESTS}{manifest.pk}/change/").content.decode()
    assert "&quot;schemaVersion&quot;: 2" in page
    assert client.post(f"{MANIFESTS}{manifest.pk}/change/", {}).status_code == 403
    assert client.get(f"{REPOSITORIES}add/").status_code == 403
    theirs = Manifest.objects.filter(repository__project=other).first()
    assert client.get(f"{MANIFESTS}{theirs.pk}/change/")["Location"] == "/admin/"


# users ------------------------------------------------------------------------


def test_sysadmin_creates_users_under_the_password_policy(other):
    client = as_user("admin")
    weak = client.post(
        f"{USERS}add/", {"username": "newbie", "password1": "weakpass", "password2": "weakpass"}
    )
    assert weak.status_code == 200
    assert "password must have 8-128 characters" in weak.content.decode()
    assert not User.objects.filter(username="newbie").exists()
    r = client.post(
        f"{USERS}add/",
        {
            "username": "newbie",
            "email": "n@example.com",
            "password1": "Newbie123",
            "password2": "Newbie123",
        },
    )
    assert r.status_code == 302
    assert check_credentials(username="newbie", password="Newbie123") is not None


def test_sysadmin_flag_goes_through_the_service(other):
    client = as_user("admin")
    dev = User.objects.get(username="dev")
    fields = {"email": "", "realname": "", "comment": "", "is_active": "on"}
    r = client.post(f"{USERS}{dev.pk}/change/", {**fields, "is_superuser": "on"})
    assert r.status_code == 302
    dev.refresh_from_db()
    assert (dev.is_superuser, dev.is_staff) == (True, True)
    r = client.post(f"{USERS}1/change/", {**fields, "is_superuser": ""})
    assert r.status_code == 200
    assert "the initial administrator stays a sysadmin" in r.content.decode()
    assert User.objects.get(pk=1).is_superuser


def test_users_are_disabled_through_the_service_never_oneself(other):
    client = as_user("admin")
    dev = User.objects.get(username="dev")
    fields = {"email": "", "realname": "Dev", "comment": ""}
    assert client.post(f"{USERS}{dev.pk}/change/", fields).status_code == 302
    dev.refresh_from_db()
    assert (dev.is_active, dev.realname, len(dev.stamp)) == (False, "Dev", 32)
    r = client.post(f"{USERS}1/change/", {**fields, "is_superuser": "on"})
    assert r.status_code == 200
    assert "the initial administrator and you yourself stay active" in r.content.decode()
    assert User.objects.get(pk=1).is_active


def test_users_are_deleted_through_the_service(other):
    client = as_user("admin")
    outsider = User.objects.get(username="outsider")
    assert client.post(f"{USERS}{outsider.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(username="outsider").exists()
    assert client.post(f"{USERS}1/delete/", {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=1).exists()


# query counts -----------------------------------------------------------------

# Queries per changelist page, whatever the number of rows: session, user, the
# page's rows, its count (plus the unfiltered count on the small tables, which
# keep show_full_result_count), the project filter's choices on members and
# robots; and for a project admin, its memberships (the admin scope).
MAX_QUERIES = {
    ("admin", MEMBERS): 6,
    ("admin", ROBOTS): 6,
    ("admin", USERS): 5,
    ("admin", PROJECTS): 5,
    ("admin", REPOSITORIES): 4,
    ("admin", MANIFESTS): 5,  # and the page's tags
    ("admin", TAGS): 4,
    ("admin", BLOBS): 4,
    ("padmin", MEMBERS): 7,
    ("padmin", ROBOTS): 7,
    ("padmin", PROJECTS): 6,
    ("padmin", REPOSITORIES): 5,
    ("padmin", MANIFESTS): 6,
    ("padmin", TAGS): 5,
}


def grow(team: Project, other: Project, n: int, start: int) -> None:
    """``n`` more of every row: content, members, robots, projects, users."""
    add_content(team, n, start)
    add_content(other, n, start)
    padmin = User.objects.get(username="padmin")
    for i in range(start, start + n):
        user = User.objects.create_user(f"u{i}", password=PASSWORD)
        Member.objects.create(project=team, user=user, role=Role.GUEST)
        make_robot(team, f"r{i}")
        project = Project.objects.create(name=f"p{i}", owner=user)
        Member.objects.create(project=project, user=padmin, role=Role.PROJECT_ADMIN)
        make_robot(project, "bot")


def count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_changelist_query_counts_do_not_grow_with_rows(other, django_assert_max_num_queries):
    team = Project.objects.get(name="team")
    clients = {"admin": as_user("admin"), "padmin": as_user("padmin")}
    grow(team, other, 3, 0)
    few = {key: count_queries(clients[key[0]], key[1]) for key in MAX_QUERIES}
    grow(team, other, 9, 100)
    many = {key: count_queries(clients[key[0]], key[1]) for key in MAX_QUERIES}
    assert many == few
    for (user, path), limit in MAX_QUERIES.items():
        with django_assert_max_num_queries(limit):
            clients[user].get(path)
    # The rows are there (an empty page would prove nothing).
    page = clients["padmin"].get(MEMBERS).content.decode()
    assert ">u108<" in page
    assert "robot$team+r108" in clients["padmin"].get(ROBOTS).content.decode()


# tag immutability rules -------------------------------------------------------

RULES = "/admin/registry/immutablerule/"


def rule_form(project: Project, **fields: object) -> dict[str, object]:
    return {
        "project": project.pk,
        "repo_decoration": "repoMatches",
        "repo_pattern": "**",
        "tag_decoration": "matches",
        "tag_pattern": "v*",
        "priority": 0,
        **fields,
    }


def test_project_admin_and_maintainer_manage_their_rules(other):
    team = Project.objects.get(name="team")
    client = as_user("padmin")
    form = client.get(f"{RULES}add/").content.decode()
    assert f'<option value="{team.pk}">team</option>' in form
    assert f'<option value="{other.pk}">' not in form
    r = client.post(f"{RULES}add/", rule_form(team))
    assert r.status_code == 302, r.content.decode()[:2000]
    rule = ImmutableRule.objects.get(project=team)
    assert (rule.tag_pattern, rule.repo_pattern, rule.disabled) == ("v*", "**", False)
    # The service's refusals are form errors: an identical rule, a bad pattern.
    again = client.post(f"{RULES}add/", rule_form(team))
    assert "an identical rule already exists" in again.content.decode()
    bad = client.post(f"{RULES}add/", rule_form(team, tag_pattern="v\x01"))
    assert bad.status_code == 200
    assert ImmutableRule.objects.count() == 1
    # Changing and deleting go through the service too (and are audited).
    r = client.post(
        f"{RULES}{rule.pk}/change/",
        {**rule_form(team, tag_pattern="release-*", disabled="on"), "project": other.pk},
    )
    assert r.status_code == 302
    rule.refresh_from_db()
    assert (rule.project_id, rule.tag_pattern, rule.disabled) == (team.pk, "release-*", True)
    listing = client.get(RULES).content.decode()
    assert "matches release-*" in listing
    # Maintainers manage rules too (Harbor's matrix), in the admin as in the API.
    assert as_user("maint").get(RULES).status_code == 200
    r = client.post(f"{RULES}{rule.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not ImmutableRule.objects.exists()
    ops = list(
        AuditEvent.objects.filter(resource_type="immutable_tag_rule")
        .order_by("id")
        .values_list("operation", flat=True)
    )
    assert ops == ["create", "update", "delete"]


def test_another_projects_rules_are_out_of_reach(other):
    """IDOR: padmin neither sees, adds to, changes nor deletes other's rules."""
    admin_actor = actor_for_user(User.objects.get(pk=1))
    theirs = immutability.rule_create(
        actor=admin_actor, project=other, data={"tag_selectors": [{"pattern": "keep-*"}]}
    )
    client = as_user("padmin")
    assert "keep-*" not in client.get(RULES).content.decode()
    r = client.post(f"{RULES}add/", rule_form(other))
    assert "Select a valid choice" in r.content.decode()
    assert client.get(f"{RULES}{theirs.pk}/change/").status_code in (302, 404)
    client.post(f"{RULES}{theirs.pk}/change/", rule_form(other, tag_pattern="x"))
    client.post(f"{RULES}{theirs.pk}/delete/", {"post": "yes"})
    theirs.refresh_from_db()
    assert theirs.tag_pattern == "keep-*"
    assert ImmutableRule.objects.count() == 1
