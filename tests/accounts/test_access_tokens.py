"""Personal access tokens and Harbor's CLI secret (issue 16, docs/tokens.md),
in-process: the identity contract, the scopes cut to the user's rights, expiry,
revocation (Basic at once, registry and refresh tokens with the principal
re-check), the API, the audit trail, last use written off the request path."""

from __future__ import annotations

import datetime
import json
import logging

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Member, PersonalAccessToken, Role, User
from accounts.services import usage
from audit.models import AuditEvent
from tests.accounts.identity_contract import PROJECT, IdentityContract, Subject
from tests.conftest import RegistryClient, basic
from tests.roles import PASSWORD, api

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = "/api/v2.0/berth/tokens"


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def put(client, path, body):
    return client.put(path, data=json.dumps(body), content_type="application/json")


def perms(namespace, *access, kind="project"):
    return [
        {
            "kind": kind,
            "namespace": namespace,
            "access": [{"resource": r, "action": a} for r, a in access],
        }
    ]


def make_token(user, name, permissions, *, password=PASSWORD, duration=-1):
    r = post(
        api(user, password),
        TOKENS,
        {"name": name, "permissions": permissions, "duration": duration},
    )
    assert r.status_code == 201, r.content
    return r.json()


def granted(user, secret, scope):
    r = api(user, secret).get(f"/service/token?service=harbor-registry&scope={scope}")
    assert r.status_code == 200, r.content
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return claims["access"][0]["actions"]


def token_status(user, secret, scope="repository:team/app:pull"):
    return (
        api(user, secret).get(f"/service/token?service=harbor-registry&scope={scope}").status_code
    )


# The identity contract -----------------------------------------------------------


class TestAccessTokens(IdentityContract):
    @pytest.fixture
    def subject(self, project) -> Subject:
        user = User.objects.create_user("alice", password=PASSWORD)
        Member.objects.create(project=project, user=user, role=Role.GUEST)
        scopes = perms(PROJECT, ("repository", "pull"), ("repository", "list"))
        made = make_token("alice", "ci", scopes)

        def disable() -> None:
            assert api("alice").delete(f"{TOKENS}/{made['id']}").status_code == 200

        def change_secret() -> str:
            disable()
            return make_token("alice", "ci", scopes)["secret"]

        return Subject("alice", made["secret"], "mallory", disable, change_secret)


class TestCliSecrets(IdentityContract):
    @pytest.fixture
    def subject(self, project) -> Subject:
        user = User.objects.create_user("carol", password=PASSWORD)
        Member.objects.create(project=project, user=user, role=Role.GUEST)
        path = f"/api/v2.0/users/{user.pk}/cli_secret"
        assert put(api("carol"), path, {"secret": "CliSecret1x"}).status_code == 200

        def disable() -> None:
            User.objects.filter(pk=user.pk).update(is_active=False)

        def change_secret() -> str:
            assert put(api("carol"), path, {"secret": "CliSecret2y"}).status_code == 200
            return "CliSecret2y"

        return Subject("carol", "CliSecret1x", "mallory", disable, change_secret)


# Creating and listing --------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_hashed(team):
    made = make_token("dev", "laptop", perms("team", ("repository", "pull")))
    secret = made["secret"]
    assert secret.startswith("berth_pat_") and len(secret) == len("berth_pat_") + 44
    assert made["prefix"] == secret[: len("berth_pat_") + 12]
    row = PersonalAccessToken.objects.get(pk=made["id"])
    assert secret not in json.dumps([row.secret_hash, row.secret_sealed, row.key, row.name])
    listed = api("dev").get(TOKENS)
    shown = api("dev").get(f"{TOKENS}/{made['id']}")
    assert listed.status_code == shown.status_code == 200
    assert secret not in listed.content.decode() + shown.content.decode()
    assert [t["name"] for t in listed.json()] == ["laptop"]
    assert listed.json()[0]["permissions"] == [
        {
            "kind": "project",
            "namespace": "team",
            "access": [{"resource": "repository", "action": "pull", "effect": "allow"}],
        }
    ]


def test_creating_is_audited_without_the_secret(team):
    made = make_token("dev", "laptop", perms("team", ("repository", "pull")))
    api("dev").delete(f"{TOKENS}/{made['id']}")
    rows = AuditEvent.objects.filter(resource_type="access_token").order_by("pk")
    assert [(e.operation, e.resource, e.username) for e in rows] == [
        ("create", "dev/laptop", "dev"),
        ("delete", "dev/laptop", "dev"),
    ]
    assert made["secret"] not in json.dumps([e.detail for e in rows])


@pytest.mark.parametrize(
    ("user", "permissions", "status"),
    [
        # guests do not push in team: a token cannot be given what its user lacks
        ("guest", perms("team", ("repository", "push")), 403),
        ("outsider", perms("team", ("repository", "pull")), 403),
        ("dev", perms("nosuch", ("repository", "pull")), 400),
        ("dev", perms("/", ("user", "list"), kind="system"), 403),
        ("dev", perms("team", ("repository", "fly")), 400),
        ("dev", [], 400),
        # every project: cut to the user's rights when used
        ("outsider", perms("*", ("repository", "pull")), 201),
        ("admin", perms("/", ("user", "list"), kind="system"), 201),
    ],
)
def test_a_token_never_names_more_than_its_user_holds(team, user, permissions, status):
    r = post(api(user), TOKENS, {"name": "t", "permissions": permissions})
    assert r.status_code == status, r.content


def test_names_are_unique_among_live_tokens(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    again = post(
        api("dev"), TOKENS, {"name": "ci", "permissions": perms("*", ("repository", "pull"))}
    )
    assert again.status_code == 409
    assert api("dev").delete(f"{TOKENS}/{made['id']}").status_code == 200
    make_token("dev", "ci", perms("team", ("repository", "pull")))
    reserved = post(
        api("dev"),
        TOKENS,
        {"name": "cli-secret", "permissions": perms("*", ("repository", "pull"))},
    )
    assert reserved.status_code == 400


def test_the_maximum_lifetime_is_enforced(team, settings):
    settings.BERTH_ACCESS_TOKEN_MAX_DAYS = 30
    scopes = perms("team", ("repository", "pull"))
    for duration in (-1, 31):
        r = post(api("dev"), TOKENS, {"name": "t", "permissions": scopes, "duration": duration})
        assert r.status_code == 400, r.content
    made = make_token("dev", "t", scopes, duration=30)
    expires = datetime.datetime.fromisoformat(made["expires_at"])
    assert timezone.now() + datetime.timedelta(days=29) < expires


def test_a_token_cannot_make_tokens_nor_sign_in_a_browser(team):
    made = make_token("dev", "ci", perms("*", ("repository", "pull"), ("repository", "push")))
    r = post(
        api("dev", made["secret"]),
        TOKENS,
        {"name": "more", "permissions": perms("*", ("repository", "pull"))},
    )
    assert r.status_code == 403
    user = User.objects.get(username="dev")
    r = put(
        api("dev", made["secret"]),
        f"/api/v2.0/users/{user.pk}/cli_secret",
        {"secret": "Abcdefg123"},
    )
    assert r.status_code == 403
    assert (
        Client().post("/c/login", {"principal": "dev", "password": made["secret"]}).status_code
        == 401
    )
    portal = Client()
    assert portal.post("/", {"username": "dev", "password": made["secret"]}).status_code == 200
    assert "_auth_user_id" not in portal.session  # the sign-in form again
    # ...nor change the account
    r = put(api("dev", made["secret"]), f"/api/v2.0/users/{user.pk}", {"realname": "x"})
    assert r.status_code == 403


def test_others_tokens_are_for_system_administrators(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    dev = User.objects.get(username="dev")
    assert api("guest").get(f"{TOKENS}/{made['id']}").status_code == 404
    assert api("guest").delete(f"{TOKENS}/{made['id']}").status_code == 404
    assert api("guest").get(f"{TOKENS}?user_id={dev.pk}").status_code == 403
    listed = api("admin").get(f"{TOKENS}?user_id={dev.pk}")
    assert [t["name"] for t in listed.json()] == ["ci"]
    assert api("admin").delete(f"{TOKENS}/{made['id']}").status_code == 200
    assert token_status("dev", made["secret"]) == 401
    assert api("dev").get(TOKENS).json()[0]["revoked_at"] is not None


# Using ------------------------------------------------------------------------------


def test_a_token_grants_what_both_it_and_its_user_allow(team):
    pull_only = make_token("dev", "ro", perms("team", ("repository", "pull")))["secret"]
    assert granted("dev", pull_only, "repository:team/app:pull,push") == ["pull"]
    both = make_token("dev", "rw", perms("*", ("repository", "pull"), ("repository", "push")))
    assert granted("dev", both["secret"], "repository:team/app:pull,push") == ["pull", "push"]
    # the user becomes a guest: the token follows
    Member.objects.filter(user__username="dev").update(role=Role.GUEST)
    assert granted("dev", both["secret"], "repository:team/app:pull,push") == ["pull"]
    # a public project stays readable, as to anyone; pushing there is not given
    assert granted("dev", pull_only, "repository:pub/app:pull,push") == ["pull"]


def test_a_removed_member_s_token_pulls_nothing(team):
    secret = make_token("guest", "ro", perms("team", ("repository", "pull")))["secret"]
    assert granted("guest", secret, "repository:team/app:pull") == ["pull"]
    Member.objects.filter(user__username="guest").delete()
    assert granted("guest", secret, "repository:team/app:pull") == []


def test_the_api_sees_what_the_token_allows(team):
    secret = make_token("padmin", "ro", perms("team", ("repository", "list")))["secret"]
    assert api("padmin", secret).get("/api/v2.0/projects/team/repositories").status_code == 200
    assert api("padmin", secret).get("/api/v2.0/projects/team/members").status_code == 403
    assert api("padmin").get("/api/v2.0/projects/team/members").status_code == 200
    names = [p["name"] for p in api("padmin", secret).get("/api/v2.0/projects").json()]
    assert sorted(names) == ["library", "pub", "team"]


def test_a_system_administrator_s_scoped_token_is_not_a_system_administrator(team):
    secret = make_token(
        "admin", "ro", perms("team", ("repository", "pull")), password="Harbor12345"
    )["secret"]
    as_token = Client(HTTP_AUTHORIZATION=basic("admin", secret))
    assert as_token.get("/api/v2.0/users").status_code == 403
    r = as_token.get("/service/token?service=harbor-registry&scope=repository:team/app:pull,push")
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull"]


def test_an_expired_token_is_refused(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    assert token_status("dev", made["secret"]) == 200  # proof cached
    PersonalAccessToken.objects.filter(pk=made["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert token_status("dev", made["secret"]) == 401


def test_another_user_s_name_with_a_token_is_refused(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    assert token_status("guest", made["secret"]) == 401


def test_registry_tokens_from_a_revoked_token_stop_working(team, settings):
    settings.BERTH_PRINCIPAL_RECHECK_SECONDS = 60
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    r = api("dev", made["secret"]).get(
        "/service/token?service=harbor-registry&scope=repository:team/app:pull"
    )
    bearer = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")
    assert bearer.get("/v2/team/app/tags/list").status_code == 404  # past authentication
    assert api("dev").delete(f"{TOKENS}/{made['id']}").status_code == 200
    # this process forgets at once; the others within the re-check interval
    assert bearer.get("/v2/team/app/tags/list").status_code == 401


def test_refresh_tokens_from_a_token_die_with_it(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    form = {"grant_type": "password", "username": "dev", "password": made["secret"]}
    r = Client().post(
        "/service/token",
        {
            **form,
            "service": "harbor-registry",
            "access_type": "offline",
            "scope": "repository:team/app:pull,push",
        },
    )
    assert r.status_code == 200, r.content
    refresh = r.json()["refresh_token"]
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull"]

    def refreshed():
        return Client().post(
            "/service/token",
            {"grant_type": "refresh_token", "refresh_token": refresh, "service": "harbor-registry"},
        )

    assert refreshed().status_code == 200
    api("dev").delete(f"{TOKENS}/{made['id']}")
    assert refreshed().status_code == 401


def test_last_use_is_written_off_the_request_path(team):
    made = make_token("dev", "ci", perms("team", ("repository", "pull")))
    assert token_status("dev", made["secret"]) == 200
    row = PersonalAccessToken.objects.get(pk=made["id"])
    assert row.last_used_at is None  # noted in memory only
    assert usage.flush() == 1
    row.refresh_from_db()
    assert row.last_used_at is not None
    listed = api("dev").get(TOKENS).json()
    assert listed[0]["last_used_at"] is not None


def test_the_secret_is_never_logged(team, caplog):
    """Every log line, the SQL with its parameters included: the key (the
    token's public part) finds the row, the secret never leaves the process."""
    from django.db import connection

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True
    try:
        made = make_token("dev", "ci", perms("team", ("repository", "pull")))
        token_status("dev", made["secret"])
        token_status("dev", made["secret"] + "x")
        api("dev").delete(f"{TOKENS}/{made['id']}")
        token_status("dev", made["secret"])
    finally:
        connection.force_debug_cursor = False
    key = made["prefix"][len("berth_pat_") :]
    assert key in caplog.text  # the lookups by key were logged
    assert made["secret"] not in caplog.text
    assert made["secret"][len(made["prefix"]) :] not in caplog.text


# The CLI secret ---------------------------------------------------------------------


def test_the_cli_secret_follows_harbor_s_rules(team):
    dev = User.objects.get(username="dev")
    path = f"/api/v2.0/users/{dev.pk}/cli_secret"
    for weak in ("short1A", "alllowercase1", "NoDigitsHere", ""):
        assert put(api("dev"), path, {"secret": weak}).status_code == 400, weak
    assert put(api("guest"), path, {"secret": "Abcdefg123"}).status_code == 403
    assert (
        put(api("admin"), "/api/v2.0/users/99999/cli_secret", {"secret": "Abcdefg123"}).status_code
        == 404
    )
    assert put(api("dev"), path, {"secret": "Abcdefg123"}).status_code == 200
    assert put(api("admin"), path, {"secret": "Other12345"}).status_code == 200
    assert token_status("dev", "Abcdefg123") == 401
    assert granted("dev", "Other12345", "repository:team/app:pull,push") == ["pull", "push"]
    assert token_status("dev", PASSWORD) == 200  # the password still works


def test_the_cli_secret_is_shown_to_its_owner_only(team):
    dev = User.objects.get(username="dev")
    assert "oidc_user_meta" not in api("dev").get("/api/v2.0/users/current").json()
    put(api("dev"), f"/api/v2.0/users/{dev.pk}/cli_secret", {"secret": "Abcdefg123"})
    meta = api("dev").get("/api/v2.0/users/current").json()["oidc_user_meta"]
    assert meta["secret"] == "Abcdefg123" and meta["user_id"] == dev.pk
    assert "oidc_user_meta" not in api("admin").get(f"/api/v2.0/users/{dev.pk}").json()
    # nor to anyone signed in with a token (the CLI secret itself included)
    assert "oidc_user_meta" not in api("dev", "Abcdefg123").get("/api/v2.0/users/current").json()
    narrow = make_token("dev", "ro", perms("team", ("repository", "pull")))["secret"]
    current = api("dev", narrow).get("/api/v2.0/users/current")
    assert current.status_code == 200 and "oidc_user_meta" not in current.json()
    assert "Abcdefg123" not in json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


# What a token costs -----------------------------------------------------------------


def _queries(client, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    return len(captured)


def test_a_token_costs_what_a_password_does(team):
    """Basic with a token, once its proof is cached, and registry tokens issued
    from one, cost the queries the password's do."""
    secret = make_token("dev", "ci", perms("team", ("repository", "pull")))["secret"]
    by_token = RegistryClient(HTTP_AUTHORIZATION=basic("dev", secret))
    by_password = RegistryClient(HTTP_AUTHORIZATION=basic("dev", PASSWORD))
    for client in (by_token, by_password):
        assert client.get("/v2/").status_code == 200  # the proof cached
    assert _queries(by_token, "/v2/") == _queries(by_password, "/v2/") == 1

    def bearer(password):
        r = api("dev", password).get(
            "/service/token?service=harbor-registry&scope=repository:team/app:pull"
        )
        client = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")
        assert client.get("/v2/team/app/tags/list").status_code == 404  # the re-check cached
        return client

    path = "/v2/team/app/tags/list"
    assert _queries(bearer(secret), path) == _queries(bearer(PASSWORD), path)


def test_lists_show_only_the_projects_a_token_names(team):
    """visible_projects and projects_where honour the limit: a token on `team`
    lists nothing of another private project its user belongs to."""
    from accounts.models import Project
    from registry.models import Repository

    other = Project.objects.create(name="other", owner_id=1)
    Member.objects.create(project=other, user=User.objects.get(username="dev"), role=Role.DEVELOPER)
    team_repo = Repository.objects.create(project=team, name="team/app")
    Repository.objects.create(project=other, name="other/app")
    secret = make_token("dev", "team-only", perms("team", ("repository", "list")))["secret"]
    by_token = Client(HTTP_AUTHORIZATION=basic("dev", secret))
    names = [r["name"] for r in by_token.get("/api/v2.0/repositories").json()]
    assert names == [team_repo.name]
    projects = [p["name"] for p in by_token.get("/api/v2.0/projects").json()]
    assert sorted(projects) == ["library", "pub", "team"]
    everything = [r["name"] for r in api("dev").get("/api/v2.0/repositories").json()]
    assert sorted(everything) == ["other/app", "team/app"]
    assert by_token.get("/api/v2.0/projects/other").status_code == 404
    assert granted("dev", secret, "repository:other/app:pull") == []


# The admin, for system administrators -------------------------------------------------


def test_system_administrators_see_and_revoke_tokens_in_the_admin(team):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    made = make_token("dev", "leaked", perms("team", ("repository", "pull")))
    admin = Client()
    admin.force_login(User.objects.get(pk=1))
    page = "/admin/accounts/personalaccesstoken/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            body = admin.get(page).content.decode()
        assert "leaked" in body and made["prefix"] in body and made["secret"] not in body
        return len(captured)

    few = queries()
    for i in range(5):
        make_token("guest", f"t{i}", perms("team", ("repository", "pull")))
    assert queries() == few  # no query per row
    dev = Client()
    dev.force_login(User.objects.get(username="dev"))
    assert dev.get(page).status_code == 403
    r = admin.post(page, {"action": "revoke", "_selected_action": [made["id"]]})
    assert r.status_code == 302
    assert token_status("dev", made["secret"]) == 401
    event = AuditEvent.objects.filter(resource_type="access_token", operation="delete").get()
    assert (event.username, event.resource) == ("admin", "dev/leaked")


# A disabled provider's users ----------------------------------------------------------


def _sso_user(team, name: str, *, local_password: bool):
    from accounts.models import ExternalIdentity, IdentityProvider

    provider, _ = IdentityProvider.objects.get_or_create(
        kind="ldap",
        name="corp",
        defaults={"enabled": True, "config": {"url": "ldap://127.0.0.1:1", "base_dn": "dc=x"}},
    )
    user = User.objects.create_user(name, password=PASSWORD if local_password else None)
    if not local_password:
        user.set_unusable_password()
        user.save()
    ExternalIdentity.objects.create(provider=provider, subject=f"uid={name}", user=user)
    Member.objects.create(project=team, user=user, role=Role.DEVELOPER)
    from accounts.services import pats
    from accounts.services.auth import actor_for_user

    _, secret = pats.token_create(
        actor=actor_for_user(user), name="ci", permissions=perms("team", ("repository", "pull"))
    )
    return provider, secret


def _set_enabled(provider, enabled: bool) -> None:
    path = f"/api/v2.0/berth/identity-providers/{provider.pk}"
    assert put(api("admin"), path, {"enabled": enabled}).status_code == 200


def test_a_disabled_provider_s_users_tokens_stop_and_come_back(team, settings):
    settings.BERTH_PRINCIPAL_RECHECK_SECONDS = 60
    provider, secret = _sso_user(team, "sso-dev", local_password=False)
    assert token_status("sso-dev", secret) == 200
    r = api("sso-dev", secret).get(
        "/service/token?service=harbor-registry&scope=repository:team/app:pull"
    )
    bearer = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}")
    assert bearer.get("/v2/team/app/tags/list").status_code == 404  # past authentication

    _set_enabled(provider, False)
    assert token_status("sso-dev", secret) == 401
    # this process forgets the user at once (others within the re-check interval)
    assert bearer.get("/v2/team/app/tags/list").status_code == 401

    _set_enabled(provider, True)
    assert token_status("sso-dev", secret) == 200


def test_a_user_with_a_password_of_their_own_keeps_their_tokens(team):
    provider, secret = _sso_user(team, "both-dev", local_password=True)
    _set_enabled(provider, False)
    assert token_status("both-dev", secret) == 200
    assert token_status("both-dev", PASSWORD) == 200
