"""Issue 13, the rest of "one way in for every body": the one parser refuses
duplicate keys and bytes that are not UTF-8 (security case A9), and every body
of the identity and access API goes through declared fields, so a value of the
wrong JSON type is a 400 in Harbor's envelope (as Harbor's Go server answers),
with nothing changed."""

from __future__ import annotations

import json

import pytest

from accounts.models import Project, Robot, User
from registry.models import ImmutableRule
from tests.accounts.test_principals import robot_body
from tests.registry.helpers import InProcess
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


def raw(client, method, path, data: bytes, content_type="application/json"):
    return client.generic(method.upper(), path, data, content_type=content_type)


def refused(r) -> str:
    assert r.status_code == 400, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "BAD_REQUEST"
    return error["message"]


# A9: duplicate keys and invalid UTF-8 ------------------------------------------------


DUPLICATES = {
    "top level": b'{"project_name": "fresh", "project_name": "other"}',
    "nested": b'{"project_name": "fresh", "metadata": {"public": "false", "public": "true"}}',
    "deep in a list": b'{"project_name": "fresh", "x": [{"a": 1, "a": 2}]}',
}


@pytest.mark.parametrize("case", DUPLICATES)
def test_a_body_with_a_duplicate_key_is_a_400(team, case):
    message = refused(raw(api("admin"), "post", "/api/v2.0/projects", DUPLICATES[case]))
    assert "duplicate key" in message
    assert not Project.objects.filter(name__in=["fresh", "other"]).exists()


INVALID_UTF8 = {
    "a lone continuation byte": b'{"project_name": "fresh", "metadata": {"severity": "\x80"}}',
    "latin-1": b'{"project_name": "fr\xe9sh"}',
    "a truncated sequence": b'{"project_name": "fresh\xe2\x82"}',
    "an encoded surrogate": b'{"project_name": "fresh\xed\xa0\x80"}',
    "an overlong slash": b'{"project_name": "fresh\xc0\xaf"}',
}


@pytest.mark.parametrize("case", INVALID_UTF8)
def test_a_body_that_is_not_utf8_is_a_400(team, case):
    before = Project.objects.count()
    message = refused(raw(api("admin"), "post", "/api/v2.0/projects", INVALID_UTF8[case]))
    assert "UTF-8" in message
    assert Project.objects.count() == before


def test_a_charset_other_than_utf8_does_not_make_bytes_text(team):
    """JSON is UTF-8 (RFC 8259); a declared latin-1 does not turn 0xE9 into é."""
    r = raw(
        api("admin"),
        "post",
        "/api/v2.0/projects",
        b'{"project_name": "fresh", "metadata": {"severity": "\xe9"}}',
        content_type="application/json; charset=latin-1",
    )
    refused(r)
    assert not Project.objects.filter(name="fresh").exists()


def test_utf8_text_and_repeated_keys_in_different_objects_are_fine(team):
    body = {"project_name": "fresh", "metadata": {"public": "false", "severity": "h\u00e9"}}
    text = json.dumps(body, ensure_ascii=False).encode()
    r = raw(api("admin"), "post", "/api/v2.0/projects", text)
    assert r.status_code == 201, r.content
    assert Project.objects.get(name="fresh").metadata["severity"] == "h\u00e9"


# Users -----------------------------------------------------------------------------


def send(client, method, path, body):
    return raw(client, method, path, json.dumps(body).encode())


@pytest.mark.parametrize(
    "body",
    [
        {"username": 7, "password": "Strong123"},
        {"username": "fresh", "password": 12345678},
        {"username": "fresh", "password": "Strong123", "email": ["f@x"]},
        {"username": "fresh", "password": "Strong123", "realname": {"first": "F"}},
        {"username": "fresh", "password": "Strong123", "comment": True},
    ],
)
def test_user_creation_fields_are_strings(team, body):
    refused(send(api("admin"), "post", "/api/v2.0/users", body))
    assert not User.objects.filter(username="fresh").exists()


def test_a_user_updates_its_own_profile(team):
    dev = User.objects.get(username="dev")
    body = {"email": "dev@example.com", "realname": "Dev Eloper", "comment": "hi"}
    r = send(api("dev"), "put", f"/api/v2.0/users/{dev.pk}", body)
    assert r.status_code == 200, r.content
    r = api("dev").get(f"/api/v2.0/users/{dev.pk}")
    assert {k: r.json()[k] for k in body} == body


def test_a_profile_field_left_out_or_null_keeps_its_value(team):
    dev = User.objects.get(username="dev")
    User.objects.filter(pk=dev.pk).update(realname="Dev", comment="kept")
    r = send(api("admin"), "put", f"/api/v2.0/users/{dev.pk}", {"email": "d@x", "comment": None})
    assert r.status_code == 200, r.content
    dev.refresh_from_db()
    assert (dev.email, dev.realname, dev.comment) == ("d@x", "Dev", "kept")


def test_another_users_profile_is_not_mine_to_change(team):
    dev = User.objects.get(username="dev")
    r = send(api("guest"), "put", f"/api/v2.0/users/{dev.pk}", {"realname": "Mallory"})
    assert r.status_code == 403
    dev.refresh_from_db()
    assert dev.realname == ""


@pytest.mark.parametrize(
    "body",
    [{"realname": 5}, {"email": False}, {"comment": ["x"]}, {"realname": "a\x00b"}, []],
)
def test_profile_fields_of_the_wrong_type_are_refused(team, body):
    dev = User.objects.get(username="dev")
    refused(send(api("dev"), "put", f"/api/v2.0/users/{dev.pk}", body))
    dev.refresh_from_db()
    assert (dev.realname, dev.email, dev.comment) == ("", "", "")


@pytest.mark.parametrize(
    "body", [{"new_password": 12345678}, {"old_password": ["x"], "new_password": "Another123"}]
)
def test_passwords_are_strings(team, body):
    dev = User.objects.get(username="dev")
    refused(send(api("admin"), "put", f"/api/v2.0/users/{dev.pk}/password", body))


@pytest.mark.parametrize("flag", ["true", "1", 1])
def test_the_sysadmin_flag_is_a_json_boolean_in_a_body(team, flag):
    """Harbor's Go server answers 400 to "true" for a boolean field."""
    dev = User.objects.get(username="dev")
    refused(
        send(api("admin"), "put", f"/api/v2.0/users/{dev.pk}/sysadmin", {"sysadmin_flag": flag})
    )
    dev.refresh_from_db()
    assert dev.is_superuser is False


# Projects --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"project_name": 7},
        {"project_name": "fresh", "public": "true"},
        {"project_name": "fresh", "metadata": {"public": True}},
        {"project_name": "fresh", "metadata": {"auto_scan": 1}},
        {"project_name": "fresh", "metadata": ["public"]},
        {"project_name": "fresh", "storage_limit": "1024"},
        {"project_name": "fresh", "registry_id": "1"},
    ],
)
def test_project_creation_fields_have_harbors_types(team, body):
    refused(send(api("admin"), "post", "/api/v2.0/projects", body))
    assert not Project.objects.filter(name="fresh").exists()


def test_project_nulls_are_as_if_absent(team):
    body = {
        "project_name": "fresh",
        "public": None,
        "metadata": {"public": "true", "auto_scan": None},
        "storage_limit": None,
        "registry_id": None,
    }
    assert send(api("admin"), "post", "/api/v2.0/projects", body).status_code == 201
    project = Project.objects.get(name="fresh")
    assert (project.public, project.metadata) == (True, {})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/api/v2.0/projects/team", {"metadata": {"prevent_vul": False}}),
        ("put", "/api/v2.0/projects/team", {"public": 1}),
        ("post", "/api/v2.0/projects/team/metadatas", {"auto_scan": True}),
        ("post", "/api/v2.0/projects/team/metadatas", {"auto_scan": None}),
        ("put", "/api/v2.0/projects/team/metadatas/auto_scan", {"auto_scan": 1}),
    ],
)
def test_project_metadata_values_are_strings(team, method, path, body):
    refused(send(api("admin"), method, path, body))
    team.refresh_from_db()
    assert (team.public, team.metadata) == (False, {})


@pytest.mark.parametrize("query", ["public=yes", "public=2", "q=public%3Dyes", "with_detail=x"])
def test_project_list_flags_are_flags(team, query):
    refused(api("admin").get(f"/api/v2.0/projects?{query}"))


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [("public=true", "pub", "team"), ("q=public%3Dtrue", "pub", "team"), ("public=", "team", "")],
)
def test_project_list_public_filter(team, query, shown, hidden):
    r = api("admin").get(f"/api/v2.0/projects?{query}")
    assert r.status_code == 200
    listed = {p["name"] for p in r.json()}
    assert shown in listed
    assert hidden not in listed


# Configurations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"self_registration": "true"}, "self_registration: must be true or false"),
        ({"oidc_verify_cert": 1}, "oidc_verify_cert: must be true or false"),
        ({"token_expiration": "30"}, "token_expiration: must be an integer"),
        ({"session_timeout": 1.5}, "session_timeout: must be an integer"),
        ({"ldap_filter": 5}, "ldap_filter: must be a string"),
        ({"banner_message": None}, "banner_message: This field may not be null."),
        ({"no_such_key": True}, "no_such_key: unknown field"),
    ],
)
def test_configuration_keys_have_harbors_types(team, body, message):
    assert refused(send(api("admin"), "put", "/api/v2.0/configurations", body)) == message
    assert (
        api("admin").get("/api/v2.0/configurations").json()["self_registration"]["value"] is False
    )


def test_harbors_other_configuration_keys_are_still_accepted_and_ignored(team):
    body = {"token_expiration": 5, "ldap_filter": "", "read_only": True, "self_registration": True}
    assert send(api("admin"), "put", "/api/v2.0/configurations", body).status_code == 200
    config = api("admin").get("/api/v2.0/configurations").json()
    assert config["token_expiration"] == {"value": 30, "editable": False}
    assert config["read_only"]["value"] is False
    assert config["self_registration"]["value"] is True


# Robots ----------------------------------------------------------------------------


def project_robot(**extra):
    body = {**robot_body("ci", ("repository", "pull")), **extra}
    return send(api("admin"), "post", "/api/v2.0/robots", body)


@pytest.mark.parametrize(
    "extra",
    [
        {"disable": "false"},
        {"description": 5},
        {"name": ["ci"]},
        {"duration": "30"},
        {"secret": 12345678},
        {"permissions": {"kind": "project"}},
        {"permissions": [{"kind": "project", "namespace": "team", "access": "pull"}]},
        {
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "team",
                    "access": [{"resource": ["repository"], "action": "pull"}],
                }
            ]
        },
    ],
)
def test_robot_creation_fields_have_harbors_types(team, extra):
    refused(project_robot(**extra))
    assert not Robot.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"disable": "false"},
        {"disable": 0},
        {"description": 5},
        {"duration": "30"},
        {"permissions": [{"kind": "project", "namespace": 1, "access": []}]},
    ],
)
def test_robot_changes_have_harbors_types(team, body):
    robot = project_robot().json()
    refused(send(api("admin"), "put", f"/api/v2.0/robots/{robot['id']}", body))
    row = Robot.objects.get(pk=robot["id"])
    assert (row.disabled, row.description, row.duration) == (False, "", -1)


def test_a_robot_sent_back_as_get_gave_it_is_accepted(team):
    """Harbor's UI and clients PUT the whole Robot they read, nulls and all."""
    robot = project_robot().json()
    path = f"/api/v2.0/robots/{robot['id']}"
    shown = api("admin").get(path).json()
    r = send(api("admin"), "put", path, {**shown, "description": "mine", "secret": None})
    assert r.status_code == 200, r.content
    assert Robot.objects.get(pk=robot["id"]).description == "mine"


def test_a_robot_secret_is_a_string(team):
    robot = project_robot().json()
    path = f"/api/v2.0/robots/{robot['id']}"
    before = Robot.objects.get(pk=robot["id"]).secret_hash
    refused(send(api("admin"), "patch", path, {"secret": 123456789012}))
    assert Robot.objects.get(pk=robot["id"]).secret_hash == before


# Immutable tag rules and listArtifacts' flags ----------------------------------------

RULES = "/api/v2.0/projects/team/immutabletagrules"


def rule(**extra):
    return {
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "pattern": "**"}]},
        **extra,
    }


@pytest.mark.parametrize(
    "body",
    [
        rule(tag_selectors=[{"pattern": 7}]),
        rule(tag_selectors=[{"pattern": "v*", "decoration": ["matches"]}]),
        rule(tag_selectors={"pattern": "v*"}),
        rule(scope_selectors={"repository": {"pattern": "**"}}),
        rule(priority="1"),
        rule(disabled="false"),
        rule(params=[]),
        rule(template=1),
    ],
)
def test_immutable_rule_fields_have_harbors_types(team, body):
    refused(send(api("padmin"), "post", RULES, body))
    assert not ImmutableRule.objects.exists()


def test_an_immutable_rule_sent_back_as_get_gave_it_is_accepted(team):
    assert send(api("padmin"), "post", RULES, rule()).status_code == 201
    [shown] = api("padmin").get(RULES).json()
    r = send(api("padmin"), "put", f"{RULES}/{shown['id']}", {**shown, "disabled": True})
    assert r.status_code == 200, r.content
    assert ImmutableRule.objects.get().disabled is True


@pytest.mark.parametrize("query", ["with_tag=yes", "with_tag=2", "with_accessory=x"])
def test_artifact_list_flags_are_flags(team, v2, query):
    InProcess(v2).push_image("team/app", "v1")
    refused(api("admin").get(f"/api/v2.0/projects/team/repositories/app/artifacts?{query}"))


@pytest.mark.parametrize(("query", "tags"), [("with_tag=false", None), ("with_tag=", ["v1"])])
def test_artifact_list_with_tag(team, v2, query, tags):
    InProcess(v2).push_image("team/app", "v1")
    r = api("admin").get(f"/api/v2.0/projects/team/repositories/app/artifacts?{query}")
    assert r.status_code == 200
    [artifact] = r.json()
    assert [t["name"] for t in artifact.get("tags") or []] == (tags or [])
