"""Issue 13, items 9 and 14: odd input gets a 400 (or 404) in Harbor's envelope,
never a 5xx, several of them without logging in; the OpenAPI document is JSON.
The parsing layer is kit/params.py, accounts/api/params.py and
accounts/api/codec.py."""

from __future__ import annotations

import json

import pytest

from accounts.models import Member, Robot, User
from tests.accounts.test_api import errors, post, put
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() says no
ARABIC_THREE = "%D9%A3"  # "٣": str.isdigit() says yes, int() reads 3


@pytest.mark.parametrize("digit", [SUPERSCRIPT_TWO, ARABIC_THREE])
def test_unicode_digits_in_a_project_reference_are_a_name_not_an_id(team, digit):
    r = api(None).get(f"/api/v2.0/projects/{digit}")
    assert r.status_code == 404
    assert errors(r) == "NOT_FOUND"


@pytest.mark.parametrize("digit", [SUPERSCRIPT_TWO, ARABIC_THREE])
@pytest.mark.parametrize("name", ["page", "page_size"])
def test_unicode_digits_in_paging_are_refused(team, digit, name):
    r = api(None).get(f"/api/v2.0/projects?{name}={digit}")
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"
    assert name in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("digit", [SUPERSCRIPT_TWO, ARABIC_THREE])
def test_unicode_digits_in_ids_of_queries_are_refused(team, digit):
    r = api("dev").get(f"/api/v2.0/users/current/permissions?scope=/project/{digit}")
    assert r.status_code == 400
    r = api("admin").get(f"/api/v2.0/robots?q=ProjectID={digit}")
    assert r.status_code == 400


@pytest.mark.parametrize("n", [SUPERSCRIPT_TWO, ARABIC_THREE, "1" * 40])
def test_unicode_digits_in_v2_n_are_refused(v2, n):
    r = v2.get(f"/v2/_catalog?n={n}")
    assert r.status_code == 400
    assert json.loads(r.content)["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


def test_a_page_beyond_64_bits_is_refused(team):
    r = api(None).get("/api/v2.0/projects?page=2676993106636410443530240")
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"


def test_the_last_64_bit_page_is_empty(team):
    r = api(None).get(f"/api/v2.0/projects?page={2**63 - 1}&page_size=100")
    assert r.status_code == 200
    assert r.json() == []
    assert r["X-Total-Count"] == "2"  # library and pub


@pytest.mark.parametrize("path", ["users/99999999999999999999", "robots/9223372036854775808"])
def test_ids_beyond_64_bits_are_not_found(team, path):
    r = api("admin").get(f"/api/v2.0/{path}")
    assert r.status_code == 404
    assert errors(r) == "NOT_FOUND"


def test_a_member_id_beyond_64_bits_is_not_found(team):
    r = api("padmin").delete("/api/v2.0/projects/team/members/9223372036854775808")
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["projects", "users"])
@pytest.mark.parametrize("who", [None, "admin"])
def test_deeply_nested_json_is_refused(team, path, who):
    deep = "[" * 100_000 + "]" * 100_000
    r = api(who).post(f"/api/v2.0/{path}", data=deep, content_type="application/json")
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"


def test_moderately_nested_json_past_the_limit_is_refused(team):
    deep = {"project_name": "deep", "metadata": {}}
    for _ in range(40):
        deep = {"metadata": deep}
    r = post(api("admin"), "/api/v2.0/projects", deep)
    assert r.status_code == 400
    assert "nested" in r.json()["errors"][0]["message"]


def test_a_body_over_the_limit_is_413(team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = post(api("admin"), "/api/v2.0/projects", {"project_name": "big", "x": "y" * 2000})
    assert r.status_code == 413
    assert errors(r) == "REQUEST_ENTITY_TOO_LARGE"


@pytest.mark.parametrize("user_id", ["abc", [1], {}, 1.5, True, -1, 2**63])
def test_member_user_id_of_the_wrong_type_is_refused(team, user_id):
    before = Member.objects.count()
    r = post(
        api("padmin"),
        "/api/v2.0/projects/team/members",
        {"role_id": 2, "member_user": {"user_id": user_id}},
    )
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"
    assert Member.objects.count() == before


@pytest.mark.parametrize("member_user", ["outsider", [1], 7])
def test_member_user_that_is_not_an_object_is_refused(team, member_user):
    r = post(
        api("padmin"), "/api/v2.0/projects/team/members", {"role_id": 2, "member_user": member_user}
    )
    assert r.status_code == 400


@pytest.mark.parametrize("role_id", [2.5, [2], None, True])
def test_member_role_of_the_wrong_type_is_refused(team, role_id):
    member = Member.objects.get(user__username="guest")
    r = put(api("padmin"), f"/api/v2.0/projects/team/members/{member.pk}", {"role_id": role_id})
    assert r.status_code == 400
    member.refresh_from_db()
    assert member.role == 3


def test_member_added_by_user_id_still_works(team):
    outsider = User.objects.get(username="outsider")
    r = post(
        api("padmin"),
        "/api/v2.0/projects/team/members",
        {"role_id": 2, "member_user": {"user_id": outsider.pk}},
    )
    assert r.status_code == 201
    assert Member.objects.get(user=outsider).role == 2


@pytest.mark.parametrize("duration", [10**9, -2, "forever", 1.5])
def test_robot_duration_out_of_range_is_refused(team, duration):
    r = post(
        api("admin"),
        "/api/v2.0/robots",
        {
            "name": "far",
            "level": "system",
            "duration": duration,
            "permissions": [
                {
                    "kind": "system",
                    "namespace": "/",
                    "access": [{"resource": "project", "action": "list"}],
                }
            ],
        },
    )
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"
    assert not Robot.objects.filter(name="robot$far").exists()


@pytest.mark.parametrize("flag", ["yes", 1, None, {}])
def test_sysadmin_flag_must_be_a_boolean(team, flag):
    dev = User.objects.get(username="dev")
    r = put(api("admin"), f"/api/v2.0/users/{dev.pk}/sysadmin", {"sysadmin_flag": flag})
    assert r.status_code == 400
    dev.refresh_from_db()
    assert dev.is_superuser is False


def test_openapi_document_is_json(team):
    r = api(None).get("/api/v2.0/openapi.json")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    paths = json.loads(r.content)["paths"]
    mid = paths["/api/v2.0/projects/{ref}/members/{mid}"]["get"]["parameters"]
    assert {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1} in [
        p["schema"] for p in mid
    ]
