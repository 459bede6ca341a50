"""The forms Harbor's clients send, in process: boolean spellings, a ``q``
escaped twice, ``Accept`` headers other than JSON. The same reach Berth from
the real clients in tests/harbor_clients/."""

from __future__ import annotations

import pytest

from tests.registry.helpers import InProcess
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("spelling", ["False", "false", "FALSE", "0"])
def test_public_false_in_harbors_spellings(team, spelling):
    r = api("admin").get(f"/api/v2.0/projects?public={spelling}")
    assert r.status_code == 200
    assert "library" not in [p["name"] for p in r.json()]
    assert {p["metadata"]["public"] for p in r.json()} == {"false"}


@pytest.mark.parametrize("spelling", ["True", "true", "1"])
def test_public_true_in_harbors_spellings(team, spelling):
    r = api("admin").get(f"/api/v2.0/projects?public={spelling}")
    assert {p["metadata"]["public"] for p in r.json()} == {"true"}


def test_a_boolean_that_is_not_one_is_refused(team):
    r = api("admin").get("/api/v2.0/projects?public=maybe")
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"


def test_with_tag_false_capitalised_leaves_tags_out(team, v2):
    InProcess(v2).push_image("team/app", "v1")
    path = "/api/v2.0/projects/team/repositories/app/artifacts"
    assert [t["name"] for t in api("admin").get(path).json()[0]["tags"]] == ["v1"]
    assert "tags" not in api("admin").get(f"{path}?with_tag=False").json()[0]


def test_q_escaped_twice_is_decoded_as_harbor_does(team):
    # harbor-cli: q=Level%253Dproject%252CProjectID%253D<id>; here on users.
    r = api("admin").get("/api/v2.0/users?q=username%253Ddev")
    assert r.status_code == 200
    assert [u["username"] for u in r.json()] == ["dev"]
    # A stray % does not unescape: kept as sent (then refused as a filter key).
    assert api("admin").get("/api/v2.0/users?q=username%25zz").status_code == 400


def test_ping_answers_pong_to_accept_text_plain(team):
    r = api(None).get("/api/v2.0/ping", HTTP_ACCEPT="text/plain")
    assert r.status_code == 200
    assert r.content == b"Pong"


@pytest.mark.parametrize("path", ["/api/v2.0/projects", "/api/v2.0/systeminfo"])
def test_any_api_call_asked_for_html_answers_json(team, path):
    r = api("admin").get(path, HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"


def test_errors_asked_for_html_are_harbors_json(team):
    r = api(None).get("/api/v2.0/no/such/thing", HTTP_ACCEPT="text/html")
    assert r.status_code == 404
    assert r.json() == {"errors": [{"code": "NOT_FOUND", "message": "not found"}]}
