"""Issue 13, item 9 (its surrogate half): every JSON body the Harbor API takes is
refused with a 400 when it escapes a lone surrogate, in the one parser all DRF
views share (accounts/api/codec.py), before any view or service sees it."""

from __future__ import annotations

import json

import pytest

from accounts.models import Project, Robot, User
from registry.models import ImmutableRule, Repository
from tests.registry.helpers import InProcess
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

LONE = "\ud800"
ROBOT_ACCESS = [{"resource": "repository", "action": "pull"}]


def send(method: str, path: str, body) -> object:
    text = json.dumps(body)  # ensure_ascii: the surrogate travels as the escape \ud800
    assert "\\ud800" in text
    return getattr(api("admin"), method)(path, data=text, content_type="application/json")


CASES = {
    "project metadata": (
        "post",
        "/api/v2.0/projects",
        {"project_name": "fresh", "metadata": {"public": "false", "note": LONE}},
    ),
    "user realname": (
        "post",
        "/api/v2.0/users",
        {"username": "fresh", "password": "Strong123", "email": "f@x", "realname": LONE},
    ),
    "robot description": (
        "post",
        "/api/v2.0/robots",
        {
            "name": "fresh",
            "description": "a" + LONE,
            "level": "project",
            "duration": 30,
            "permissions": [{"kind": "project", "namespace": "team", "access": ROBOT_ACCESS}],
        },
    ),
    "rule pattern": (
        "post",
        "/api/v2.0/projects/team/immutabletagrules",
        {
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": LONE}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "pattern": "**"}]},
        },
    ),
    "a key, deep in a list": (
        "post",
        "/api/v2.0/projects",
        {"project_name": "fresh", "metadata": {"public": "false"}, "x": [{LONE: 1}]},
    ),
    "repository description": (
        "put",
        "/api/v2.0/projects/team/repositories/app",
        {"description": LONE},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_body_with_a_lone_surrogate_is_a_400(team, v2, case):
    InProcess(v2).push_image("team/app", "v1")
    method, path, body = CASES[case]
    r = send(method, path, body)
    assert r.status_code == 400, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "BAD_REQUEST"
    assert "lone surrogate" in error["message"]
    assert not Project.objects.filter(name="fresh").exists()
    assert not User.objects.filter(username="fresh").exists()
    assert not Robot.objects.exists()
    assert not ImmutableRule.objects.exists()
    assert Repository.objects.get(name="team/app").description == ""


def test_a_surrogate_pair_is_one_character_and_welcome(team):
    body = {"username": "smile", "password": "Strong123", "email": "s@x", "realname": "\U0001f600"}
    text = json.dumps(body)
    assert "\\ud83d\\ude00" in text  # the pair, escaped as two halves
    r = api("admin").post("/api/v2.0/users", data=text, content_type="application/json")
    assert r.status_code == 201, r.content
    assert User.objects.get(username="smile").realname == "\U0001f600"
