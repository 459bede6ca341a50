"""Principals acting on principals, and how long a principal's tokens outlive
it (Berth issue 13, items 3, 4, 10, 12; security cases B17, B21, C24)."""

from __future__ import annotations

import json

import pytest

from accounts.models import Project, Robot
from tests.roles import api

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
