"""Principals acting on principals, and how long a principal's tokens outlive
it (Berth issue 13, items 3, 4, 10, 12; security cases B17, B21, C24)."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Project, Robot, User
from tests.conftest import RegistryClient
from tests.roles import PASSWORD, api

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, path, body, **extra):
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)


def send(client, method, path, body):
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


def robot_body(name, *access, namespace="team"):
    return {
        "name": name,
        "level": "project",
        "duration": -1,
        "permissions": [
            {
                "kind": "project",
                "namespace": namespace,
                "access": [{"resource": r, "action": a} for r, a in access],
            }
        ],
    }


def make_robot(name, *access, namespace="team"):
    r = post(api("admin"), "/api/v2.0/robots", robot_body(name, *access, namespace=namespace))
    assert r.status_code == 201, r.content
    return r.json()


# Item 3: a weak robot never takes over a stronger one -------------------------------


STRONG = (("repository", "pull"), ("repository", "push"), ("member", "create"))


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("patch", {"secret": "Chosen-secret-1"}),
        ("put", {"disable": False, "description": "mine now"}),
        ("delete", {}),
    ],
)
def test_weak_robot_cannot_change_a_stronger_one(team, method, body):
    weak = make_robot("weak", ("project", "read"), ("robot", "update"), ("robot", "delete"))
    strong = make_robot("strong", *STRONG)
    as_weak = api(weak["name"], weak["secret"])

    r = send(as_weak, method, f"/api/v2.0/robots/{strong['id']}", body)

    assert r.status_code == 403, r.content
    row = Robot.objects.get(pk=strong["id"])
    assert row.description == ""
    # The chosen secret proves nothing; the robot's own still works.
    assert api(strong["name"], "Chosen-secret-1").get("/service/token").status_code == 401
    assert api(strong["name"], strong["secret"]).get("/service/token").status_code == 200


def test_robot_may_change_a_robot_it_covers(team):
    manager = make_robot(
        "manager", ("project", "read"), ("robot", "update"), ("repository", "pull")
    )
    puller = make_robot("puller", ("repository", "pull"))
    r = send(
        api(manager["name"], manager["secret"]),
        "patch",
        f"/api/v2.0/robots/{puller['id']}",
        {"secret": "Chosen-secret-1"},
    )
    assert r.status_code == 200, r.content
    assert api(puller["name"], "Chosen-secret-1").get("/service/token").status_code == 200


# Item 12: ProjectID= in the robot list is no existence oracle -----------------------


def test_robot_list_answers_alike_for_a_private_and_a_missing_project(team):
    hidden = Project.objects.create(name="hidden", owner_id=1)
    missing = hidden.pk + 1000
    outsider = api("outsider")

    private = outsider.get(f"/api/v2.0/robots?q=ProjectID={hidden.pk}")
    absent = outsider.get(f"/api/v2.0/robots?q=ProjectID={missing}")

    assert private.status_code == absent.status_code == 404
    assert private.json()["errors"][0]["code"] == absent.json()["errors"][0]["code"]
    assert "hidden" not in private.content.decode()
    # Whoever may see the project still lists its robots.
    assert api("padmin").get(f"/api/v2.0/robots?q=ProjectID={team.pk}").status_code == 200


# Item 4: refresh tokens are bound to the principal's id and stamp ---------------------


def robot_refresh_token(robot) -> str:
    r = api(robot["name"], robot["secret"]).get(
        "/service/token?service=harbor-registry&offline_token=true"
    )
    assert r.status_code == 200, r.content
    return r.json()["refresh_token"]


def refreshed(refresh_token: str) -> int:
    return (
        Client()
        .post(
            "/service/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "service": "harbor-registry",
                "scope": "repository:team/app:pull",
            },
        )
        .status_code
    )


def test_robot_refresh_token_works_until_the_secret_is_refreshed(team):
    robot = make_robot("ci", ("repository", "pull"))
    refresh_token = robot_refresh_token(robot)
    assert refreshed(refresh_token) == 200
    r = send(api("admin"), "patch", f"/api/v2.0/robots/{robot['id']}", {})
    assert r.status_code == 200
    assert refreshed(refresh_token) == 401


def test_robot_refresh_token_dies_with_the_robot_not_revived_by_its_name(team):
    robot = make_robot("ci", ("repository", "pull"))
    refresh_token = robot_refresh_token(robot)
    assert api("admin").delete(f"/api/v2.0/robots/{robot['id']}").status_code == 200
    make_robot("ci", ("repository", "pull"), ("repository", "push"))
    assert refreshed(refresh_token) == 401


def test_robot_refresh_token_dies_when_disabled_and_stays_dead_when_enabled(team):
    robot = make_robot("ci", ("repository", "pull"))
    refresh_token = robot_refresh_token(robot)
    path = f"/api/v2.0/robots/{robot['id']}"
    assert send(api("admin"), "put", path, {"disable": True}).status_code == 200
    assert refreshed(refresh_token) == 401
    assert send(api("admin"), "put", path, {"disable": False}).status_code == 200
    assert refreshed(refresh_token) == 401
    assert refreshed(robot_refresh_token(robot)) == 200


def test_user_refresh_token_is_not_revived_by_a_new_user_of_the_name(team):
    r = api("dev").get("/service/token?service=harbor-registry&offline_token=true")
    refresh_token = r.json()["refresh_token"]
    assert refreshed(refresh_token) == 200
    User.objects.filter(username="dev").delete()
    User.objects.create_user("dev", password=PASSWORD)
    assert refreshed(refresh_token) == 401


def user_refresh_token(username: str = "dev") -> str:
    r = api(username).get("/service/token?service=harbor-registry&offline_token=true")
    assert r.status_code == 200, r.content
    return r.json()["refresh_token"]


def set_active(user: User, active: bool) -> None:
    """Disable or enable ``user`` where a sysadmin does it: the admin's user page."""
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    profile = {"email": user.email, "realname": user.realname, "comment": user.comment}
    r = client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {**profile, "is_active": "on" if active else ""},
    )
    assert r.status_code == 302, r.content


def test_user_refresh_token_dies_when_disabled_and_stays_dead_when_enabled(team):
    refresh_token = user_refresh_token()
    assert refreshed(refresh_token) == 200
    dev = User.objects.get(username="dev")
    set_active(dev, False)
    assert refreshed(refresh_token) == 401
    set_active(dev, True)
    assert refreshed(refresh_token) == 401
    assert refreshed(user_refresh_token()) == 200


def test_user_refresh_token_dies_with_a_password_set_back(team):
    """Changed and changed back: the hash is new either way, and so is the stamp."""
    refresh_token = user_refresh_token()
    dev = User.objects.get(username="dev")
    for password in ("Another123", PASSWORD):
        r = send(
            api("admin"), "put", f"/api/v2.0/users/{dev.pk}/password", {"new_password": password}
        )
        assert r.status_code == 200, r.content
    assert refreshed(refresh_token) == 401
    assert refreshed(user_refresh_token()) == 200


def test_user_refresh_token_dies_with_the_user(team):
    refresh_token = user_refresh_token()
    dev = User.objects.get(username="dev")
    assert api("admin").delete(f"/api/v2.0/users/{dev.pk}").status_code == 200
    assert refreshed(refresh_token) == 401


# Item 10: a disabled or deleted principal's access tokens stop working ----------------


def robot_bearer(robot) -> RegistryClient:
    r = api(robot["name"], robot["secret"]).get(
        "/service/token?service=harbor-registry&scope=repository:team/app:pull,push"
    )
    return RegistryClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")


def test_disabling_a_robot_stops_its_token_in_this_process_at_once(team):
    robot = make_robot("ci", ("repository", "pull"), ("repository", "push"))
    reg = robot_bearer(robot)
    assert reg.post("/v2/team/app/blobs/uploads/").status_code == 202
    path = f"/api/v2.0/robots/{robot['id']}"
    assert send(api("admin"), "put", path, {"disable": True}).status_code == 200
    assert reg.post("/v2/team/app/blobs/uploads/").status_code == 401


def test_a_deleted_robots_token_does_not_pass_for_a_new_robot_of_its_name(team):
    robot = make_robot("ci", ("repository", "pull"), ("repository", "push"))
    reg = robot_bearer(robot)
    assert api("admin").delete(f"/api/v2.0/robots/{robot['id']}").status_code == 200
    make_robot("ci", ("repository", "pull"), ("repository", "push"))
    assert reg.get("/v2/").status_code == 401


def test_other_processes_notice_within_the_recheck_interval(team, monkeypatch):
    """Another process disabled the user (here: the row, behind this process's
    back). Within the interval the cached answer stands, and costs no query;
    after it, the token is refused."""
    r = api("dev").get("/service/token?service=harbor-registry&scope=repository:team/app:pull")
    reg = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")
    assert reg.get("/v2/").status_code == 200
    User.objects.filter(username="dev").update(is_active=False)
    with CaptureQueriesContext(connection) as queries:
        assert reg.get("/v2/").status_code == 200
    assert len(queries) == 0
    later = time.time() + settings.BERTH_PRINCIPAL_RECHECK_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the interval has passed
    assert reg.get("/v2/").status_code == 401


# Item 11: no login from another site's page -------------------------------------------


def login(**headers):
    return Client().post("/c/login", {"principal": "dev", "password": PASSWORD}, **headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_ORIGIN": "null"},
        {"HTTP_ORIGIN": "https://testserver"},  # another scheme
        {"HTTP_REFERER": "https://evil.example/login.html"},
    ],
)
def test_login_from_another_site_is_refused(team, headers):
    r = login(**headers)
    assert r.status_code == 403
    assert "sid" not in r.cookies


@pytest.mark.parametrize(
    "headers",
    [
        {},  # Harbor's clients and scripts send no Origin
        {"HTTP_ORIGIN": "http://testserver"},
        {"HTTP_REFERER": "http://testserver/harbor/sign-in"},
        {"HTTP_ORIGIN": "https://portal.example"},  # CSRF_TRUSTED_ORIGINS
        {"HTTP_ORIGIN": "https://berth.example"},  # BERTH_EXTERNAL_URL, behind a proxy
    ],
)
def test_login_from_this_site_and_from_clients_works(team, headers, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://portal.example"]
    settings.BERTH_EXTERNAL_URL = "https://berth.example"
    r = login(**headers)
    assert r.status_code == 200, r.content
    assert r.cookies["sid"].value
