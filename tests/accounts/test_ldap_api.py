"""Harbor's LDAP API (/configurations ldap_* and auth_mode, /systeminfo,
/ldap/*, /usergroups, member_group) and Berth's /berth/identity-providers,
against a real slapd."""

from __future__ import annotations

import json

import pytest

from accounts.models import ExternalIdentity, IdentityProvider, User, UserGroup
from accounts.services import providers
from tests.ldap_server import GROUPS, PASSWORDS, PEOPLE, READER_DN, READER_PASSWORD, group_dn
from tests.roles import api, granted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def put(client, url, data):
    return client.put(url, json.dumps(data), content_type="application/json")


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


@pytest.fixture
def configured(team, ldap_directory):
    """The primary LDAP provider, made through Harbor's /configurations."""
    r = put(
        api("admin"),
        "/api/v2.0/configurations",
        {
            "auth_mode": "ldap_auth",
            "ldap_url": ldap_directory.url,
            "ldap_search_dn": READER_DN,
            "ldap_search_password": READER_PASSWORD,
            "ldap_base_dn": PEOPLE,
            "ldap_uid": "uid",
            "ldap_filter": "(objectClass=inetOrgPerson)",
            "ldap_scope": 2,
            "ldap_group_base_dn": GROUPS,
            "ldap_group_search_filter": "(objectClass=groupOfNames)",
            "ldap_group_attribute_name": "cn",
            "ldap_group_admin_dn": group_dn("berth-admins"),
        },
    )
    assert r.status_code == 200, r.content
    return IdentityProvider.objects.get()


def test_configurations_make_the_primary_provider_and_never_show_the_password(configured):
    assert configured.enabled and configured.config["base_dn"] == PEOPLE
    assert providers.secret_of(configured) == READER_PASSWORD
    r = api("admin").get("/api/v2.0/configurations")
    body = r.json()
    assert body["auth_mode"]["value"] == "ldap_auth"
    assert body["ldap_base_dn"] == {"value": PEOPLE, "editable": True}
    assert body["ldap_scope"]["value"] == 2
    assert "ldap_search_password" not in body
    assert READER_PASSWORD not in r.content.decode()
    assert api().get("/api/v2.0/systeminfo").json()["auth_mode"] == "ldap_auth"
    # db_auth turns the provider off; local users still sign in.
    assert (
        put(api("admin"), "/api/v2.0/configurations", {"auth_mode": "db_auth"}).status_code == 200
    )
    assert api().get("/api/v2.0/systeminfo").json()["auth_mode"] == "db_auth"
    assert api("alice", PASSWORDS["alice"]).get("/api/v2.0/users/current").status_code == 401
    assert api("dev").get("/api/v2.0/users/current").status_code == 200


def test_bad_ldap_configuration_is_a_400(team):
    r = put(
        api("admin"), "/api/v2.0/configurations", {"ldap_url": "http://x", "ldap_base_dn": "dc=x"}
    )
    assert r.status_code == 400
    assert "ldap://" in r.json()["errors"][0]["message"]
    assert not IdentityProvider.objects.exists()


def test_ldap_ping(configured):
    r = post(api("admin"), "/api/v2.0/ldap/ping", {})
    assert r.json() == {"success": True, "message": "ok"}
    r = post(api("admin"), "/api/v2.0/ldap/ping", {"ldap_search_password": "wrong"})
    assert r.json()["success"] is False
    assert "refused the search DN and password" in r.json()["message"]
    assert post(api("dev"), "/api/v2.0/ldap/ping", {}).status_code == 403


def test_ldap_user_search_and_import(configured):
    r = api("admin").get("/api/v2.0/ldap/users/search?username=alice")
    assert r.json() == [
        {"username": "alice", "realname": "Alice Example", "email": "alice@example.org"}
    ]
    assert len(api("admin").get("/api/v2.0/ldap/users/search").json()) == len(PASSWORDS)
    # The name is a literal, never a filter.
    assert api("admin").get("/api/v2.0/ldap/users/search?username=*").json() == []
    r = post(api("admin"), "/api/v2.0/ldap/users/import", {"ldap_uid_list": ["dave", "nobody"]})
    assert r.status_code == 404
    assert r.json() == [{"uid": "nobody", "error": "not found"}]
    dave = User.objects.get(username="dave")
    assert (dave.email, dave.has_usable_password()) == ("dave@example.org", False)
    assert ExternalIdentity.objects.get(user=dave).provider == configured
    # The imported user signs in with the directory password, as the same user.
    assert (
        api("dave", PASSWORDS["dave"]).get("/api/v2.0/users/current").json()["user_id"] == dave.pk
    )
    r = post(api("admin"), "/api/v2.0/ldap/users/import", {"ldap_uid_list": ["dave"]})
    assert r.json() == [{"uid": "dave", "error": "already imported"}]


def test_ldap_group_search(configured):
    r = api("admin").get("/api/v2.0/ldap/groups/search?groupname=engineering")
    assert r.json() == [
        {"group_name": "engineering", "group_type": 1, "ldap_group_dn": group_dn("engineering")}
    ]
    r = api("admin").get(f"/api/v2.0/ldap/groups/search?groupdn={group_dn('ops')}")
    assert [g["group_name"] for g in r.json()] == ["ops"]


def test_usergroups_and_a_nested_ldap_group_as_member(configured, team):
    admin = api("admin")
    r = post(
        admin,
        "/api/v2.0/usergroups",
        {"group_name": "engineering", "group_type": 1, "ldap_group_dn": group_dn("engineering")},
    )
    assert r.status_code == 201, r.content
    gid = int(r["Location"].rsplit("/", 1)[1])
    assert admin.get(f"/api/v2.0/usergroups/{gid}").json() == {
        "id": gid,
        "group_name": "engineering",
        "group_type": 1,
        "ldap_group_dn": group_dn("engineering"),
    }
    dup = post(
        admin,
        "/api/v2.0/usergroups",
        {"group_name": "again", "group_type": 1, "ldap_group_dn": group_dn("engineering").upper()},
    )
    assert dup.status_code == 409
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 2, "member_group": {"ldap_group_dn": group_dn("engineering"), "group_type": 1}},
    )
    assert r.status_code == 201, r.content
    members = api("padmin").get(f"/api/v2.0/projects/{team.pk}/members?entityname=engin").json()
    assert [(m["entity_name"], m["entity_type"], m["role_id"]) for m in members] == [
        ("engineering", "g", 2)
    ]
    # alice is in engineering through developers: docker login and push.
    assert granted("alice", "repository:team/app:pull,push", password=PASSWORDS["alice"]) == [
        "pull",
        "push",
    ]
    assert api("dev").get("/api/v2.0/usergroups/search?groupname=eng").json() == [
        {"id": gid, "group_name": "engineering", "group_type": 1}
    ]
    assert put(admin, f"/api/v2.0/usergroups/{gid}", {"group_name": "eng"}).status_code == 200
    assert admin.get("/api/v2.0/usergroups?group_name=eng").json()[0]["group_name"] == "eng"
    assert admin.delete(f"/api/v2.0/usergroups/{gid}").status_code == 200
    assert granted("alice", "repository:team/app:pull,push", password=PASSWORDS["alice"]) == []


def test_an_http_group_member_by_name(team):
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 3, "member_group": {"group_name": "qa", "group_type": 2}},
    )
    assert r.status_code == 201, r.content
    assert UserGroup.objects.get(name="qa").type == UserGroup.Type.HTTP
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 3, "member_group": {"group_name": "qa", "group_type": 2}},
    )
    assert r.status_code == 409
    # An LDAP group by DN needs a directory to find it in.
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 3, "member_group": {"ldap_group_dn": "cn=unknown,dc=x", "group_type": 1}},
    )
    assert r.status_code == 400
    assert "no LDAP provider" in r.json()["errors"][0]["message"]


def test_an_ldap_group_member_by_dn_is_found_in_the_directory(configured, team):
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 2, "member_group": {"ldap_group_dn": group_dn("developers")}},
    )
    assert r.status_code == 201, r.content
    group = UserGroup.objects.get()
    assert (group.name, group.ldap_group_dn, group.provider) == (
        "developers",
        group_dn("developers"),
        configured,
    )
    r = post(
        api("padmin"),
        f"/api/v2.0/projects/{team.pk}/members",
        {"role_id": 2, "member_group": {"ldap_group_dn": group_dn("nothing-here")}},
    )
    assert r.status_code == 400
    assert "the directory has no group" in r.json()["errors"][0]["message"]


def test_berth_identity_providers_api(team, ldap_directory):
    admin = api("admin")
    r = post(
        admin,
        "/api/v2.0/berth/identity-providers",
        {
            "kind": "ldap",
            "name": "corp",
            "config": ldap_directory.provider_config(),
            "secret": READER_PASSWORD,
        },
    )
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["has_secret"] is True and "secret" not in created
    assert READER_PASSWORD not in r.content.decode()
    pid = created["id"]
    listing = admin.get("/api/v2.0/berth/identity-providers")
    assert [p["name"] for p in listing.json()] == ["corp"]
    assert READER_PASSWORD not in listing.content.decode()
    r = post(admin, f"/api/v2.0/berth/identity-providers/{pid}/ping", {})
    assert r.json() == {"success": True, "message": "ok"}
    r = post(admin, f"/api/v2.0/berth/identity-providers/{pid}/ping", {"secret": "nope"})
    assert r.json()["success"] is False
    r = post(
        admin,
        "/api/v2.0/berth/identity-providers/ping",
        {"kind": "ldap", "config": ldap_directory.provider_config(), "secret": READER_PASSWORD},
    )
    assert r.json()["success"] is True
    # A second one, then the order.
    other = post(
        admin,
        "/api/v2.0/berth/identity-providers",
        {"kind": "ldap", "name": "other", "config": ldap_directory.provider_config()},
    ).json()
    r = put(admin, "/api/v2.0/berth/identity-providers/order", {"ids": [other["id"], pid]})
    assert [p["name"] for p in r.json()] == ["other", "corp"]
    # Changing other settings keeps the secret; disabling stops its sign-ins.
    r = put(admin, f"/api/v2.0/berth/identity-providers/{pid}", {"enabled": False})
    assert r.status_code == 200 and r.json()["has_secret"] is True
    assert (
        put(admin, f"/api/v2.0/berth/identity-providers/{pid}", {"kind": "oidc"}).status_code == 400
    )
    assert (
        post(
            admin,
            "/api/v2.0/berth/identity-providers",
            {"kind": "ldap", "name": "corp", "config": ldap_directory.provider_config()},
        ).status_code
        == 409
    )
    assert api("padmin").get("/api/v2.0/berth/identity-providers").status_code == 403
    assert admin.delete(f"/api/v2.0/berth/identity-providers/{pid}").status_code == 200
    assert admin.get(f"/api/v2.0/berth/identity-providers/{pid}").status_code == 404
