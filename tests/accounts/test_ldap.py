"""LDAP identity providers against a real slapd (tests/ldap_server.py): sign-in
at ``/`` and through the token service, identities bound by (provider,
subject), nested groups as project members, the admin group, disabled and
unreachable providers, filter injection, name collisions, the password cache."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import directory
from accounts.errors import Invalid
from accounts.models import ExternalIdentity, Member, Project, Role, User, UserGroup
from accounts.services import providers
from accounts.services.auth import actor_for_user
from tests.conftest import ADMIN
from tests.ldap_server import PASSWORDS, READER_PASSWORD, group_dn, user_dn
from tests.roles import api, granted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def admin(bootstrapped):
    return actor_for_user(User.objects.get(pk=1))


@pytest.fixture
def corp(admin, ldap_directory):
    return providers.provider_create(
        actor=admin,
        kind="ldap",
        name="corp",
        config=ldap_directory.provider_config(),
        secret=READER_PASSWORD,
    )


def sign_in(username: str, password: str) -> tuple[Client, str]:
    client = Client()
    r = client.post("/", {"username": username, "password": password})
    return client, (r.content.decode() if r.status_code == 200 else "")


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_first_sign_in_creates_the_user_bound_by_dn_with_nested_groups(corp):
    client, page = sign_in("alice", PASSWORDS["alice"])
    assert signed_in(client), page
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.realname, alice.is_superuser) == (
        "alice@example.org",
        "Alice Example",
        False,
    )
    assert not alice.has_usable_password()
    identity = ExternalIdentity.objects.get(user=alice)
    assert (identity.provider_id, identity.subject) == (corp.pk, user_dn("alice"))
    # developers directly, engineering through developers (nested).
    groups = UserGroup.objects.filter(memberships__user=alice)
    assert {(g.name, g.ldap_group_dn, g.type) for g in groups} == {
        ("developers", group_dn("developers"), UserGroup.Type.LDAP),
        ("engineering", group_dn("engineering"), UserGroup.Type.LDAP),
    }
    # Signing in again finds the same user through the identity.
    client, _ = sign_in("ALICE", PASSWORDS["alice"])
    assert signed_in(client)
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_a_nested_group_gives_a_project_role_to_pull_and_push(corp, team):
    engineering = UserGroup.objects.create(
        name="engineering", type=UserGroup.Type.LDAP, ldap_group_dn=group_dn("engineering")
    )
    Member.objects.create(project=team, group=engineering, role=Role.DEVELOPER)
    # The token service, Basic with the directory password (docker login).
    assert granted("alice", "repository:team/app:pull,push", password=PASSWORDS["alice"]) == [
        "pull",
        "push",
    ]
    # bob is in ops only.
    assert granted("bob", "repository:team/app:pull,push", password=PASSWORDS["bob"]) == []
    r = api("alice", PASSWORDS["alice"]).get("/api/v2.0/projects?name=team")
    assert [(p["name"], p["current_user_role_id"]) for p in r.json()] == [("team", Role.DEVELOPER)]


def test_the_admin_group_makes_a_sysadmin_and_leaving_it_unmakes(corp, admin):
    client, _ = sign_in("carol", PASSWORDS["carol"])
    assert signed_in(client)
    assert User.objects.get(username="carol").is_superuser
    r = api("carol", PASSWORDS["carol"]).get("/api/v2.0/users")
    assert r.status_code == 200
    providers.provider_update(
        actor=admin,
        provider_id=corp.pk,
        changes={"config": {"group_admin_dn": group_dn("ops")}},
    )
    directory._revoke("carol")  # the cached proof would answer for a minute
    client, _ = sign_in("carol", PASSWORDS["carol"])
    assert signed_in(client)
    assert not User.objects.get(username="carol").is_superuser


def test_a_disabled_provider_signs_nobody_in_local_users_still_sign_in(corp, admin):
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": False})
    client, page = sign_in("alice", PASSWORDS["alice"])
    assert not signed_in(client)
    assert "Please enter a correct username and password" in page
    client, _ = sign_in(*ADMIN)
    assert signed_in(client)
    assert not User.objects.filter(username="alice").exists()


def test_a_disabled_provider_revokes_cached_passwords(corp, admin):
    assert api("alice", PASSWORDS["alice"]).get("/api/v2.0/users/current").status_code == 200
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": False})
    assert api("alice", PASSWORDS["alice"]).get("/api/v2.0/users/current").status_code == 401


@pytest.mark.parametrize("name", ["*)(uid=*", "*", "alice)(|(uid=*", "al*", "*)(objectClass=*"])
def test_filter_injection_in_the_name_signs_nobody_in(corp, name):
    for password in (PASSWORDS["alice"], "*"):
        r = api(name, password).get("/api/v2.0/users/current")
        assert r.status_code == 401, (name, password)
    assert not User.objects.exclude(pk=1).exists()


def test_a_wrong_password_signs_nobody_in(corp):
    client, _ = sign_in("alice", "wrong-password")
    assert not signed_in(client)
    client, _ = sign_in("alice", "")
    assert not signed_in(client)


def test_a_name_collision_is_refused_with_a_clear_message(corp):
    User.objects.create_user("clash", password="LocalPass1")
    client, page = sign_in("clash", PASSWORDS["clash"])
    assert not signed_in(client)
    assert "a Berth user named clash already exists" in page
    assert not ExternalIdentity.objects.exists()
    # The local user keeps signing in with the local password.
    client, _ = sign_in("clash", "LocalPass1")
    assert signed_in(client)


def test_no_new_users_when_the_provider_does_not_create_them(corp, admin):
    providers.provider_update(
        actor=admin, provider_id=corp.pk, changes={"allow_create_users": False}
    )
    client, _ = sign_in("dave", PASSWORDS["dave"])
    assert not signed_in(client)
    assert not User.objects.filter(username="dave").exists()


def test_subject_as_entry_uuid(admin, ldap_directory):
    providers.provider_create(
        actor=admin,
        kind="ldap",
        name="corp",
        config=ldap_directory.provider_config(subject_attribute="entryUUID"),
        secret=READER_PASSWORD,
    )
    client, _ = sign_in("erin", PASSWORDS["erin"])
    assert signed_in(client)
    subject = ExternalIdentity.objects.get(user__username="erin").subject
    assert len(subject) == 36 and subject.count("-") == 4


def test_memberof_groups(admin, ldap_directory):
    providers.provider_create(
        actor=admin,
        kind="ldap",
        name="corp",
        config=ldap_directory.provider_config(group_membership_attribute="memberOf"),
        secret=READER_PASSWORD,
    )
    client, _ = sign_in("alice", PASSWORDS["alice"])
    assert signed_in(client)
    # memberOf lists direct groups (the overlay's; AD's alike).
    names = set(
        UserGroup.objects.filter(memberships__user__username="alice").values_list("name", flat=True)
    )
    assert names == {"developers"}


def test_a_silent_server_costs_its_timeout_then_the_next_provider_answers(
    admin, ldap_directory, blackhole_port
):
    providers.provider_create(
        actor=admin,
        kind="ldap",
        name="hung",
        config=ldap_directory.provider_config(url=f"ldap://127.0.0.1:{blackhole_port}", timeout=1),
        secret=READER_PASSWORD,
    )
    providers.provider_create(
        actor=admin,
        kind="ldap",
        name="corp",
        config=ldap_directory.provider_config(),
        secret=READER_PASSWORD,
    )
    client, _ = sign_in("bob", PASSWORDS["bob"])
    assert signed_in(client)
    assert ExternalIdentity.objects.get(user__username="bob").provider.name == "corp"
    with pytest.raises(Invalid, match="did not answer within 1 s"):
        providers.provider_ping(
            actor=admin,
            kind="ldap",
            config=ldap_directory.provider_config(
                url=f"ldap://127.0.0.1:{blackhole_port}", timeout=1
            ),
            secret=READER_PASSWORD,
        )


def test_ping(corp, admin, ldap_directory):
    assert providers.provider_ping(actor=admin, provider_id=corp.pk) == "ok"
    with pytest.raises(Invalid, match="refused the search DN and password"):
        providers.provider_ping(actor=admin, provider_id=corp.pk, secret="wrong")
    with pytest.raises(Invalid, match="cannot reach"):
        providers.provider_ping(
            actor=admin, provider_id=corp.pk, config={"url": "ldap://127.0.0.1:1"}
        )
    with pytest.raises(Invalid, match="does not exist"):
        providers.provider_ping(
            actor=admin, provider_id=corp.pk, config={"base_dn": "ou=nowhere,dc=example,dc=org"}
        )


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_tls_with_the_providers_ca(admin, ldap_directory, mode):
    url = ldap_directory.ldaps_url if mode == "ldaps" else ldap_directory.url
    config = ldap_directory.provider_config(
        url=url, start_tls=mode == "starttls", ca_cert=ldap_directory.ca_pem
    )
    assert (
        providers.provider_ping(actor=admin, kind="ldap", config=config, secret=READER_PASSWORD)
        == "ok"
    )
    # Without the CA the server's certificate is not trusted.
    with pytest.raises(Invalid):
        providers.provider_ping(
            actor=admin, kind="ldap", config={**config, "ca_cert": ""}, secret=READER_PASSWORD
        )
    providers.provider_create(
        actor=admin, kind="ldap", name="corp", config=config, secret=READER_PASSWORD
    )
    client, _ = sign_in("alice", PASSWORDS["alice"])
    assert signed_in(client)


def test_the_directory_password_is_cached_and_a_failure_revokes_it(corp, monkeypatch):
    binds = []
    original = directory.ProviderBackend.authenticate

    def counting(self, request, username=None, password=None, **kw):
        binds.append(username)
        return original(self, request, username=username, password=password, **kw)

    monkeypatch.setattr(directory.ProviderBackend, "authenticate", counting)
    alice = api("alice", PASSWORDS["alice"])
    for _ in range(3):
        assert alice.get("/api/v2.0/users/current").status_code == 200
    assert binds == ["alice"]
    # A wrong password goes to the directory and revokes the cached proof.
    assert api("alice", "wrong").get("/api/v2.0/users/current").status_code == 401
    assert alice.get("/api/v2.0/users/current").status_code == 200
    assert binds == ["alice", "alice", "alice"]
    # A disabled user's cached proof admits nobody.
    User.objects.filter(username="alice").update(is_active=False)
    assert alice.get("/api/v2.0/users/current").status_code == 401


def test_projects_of_a_group_are_on_the_dashboard(corp, team):
    developers = UserGroup.objects.create(
        name="developers", type=UserGroup.Type.LDAP, ldap_group_dn=group_dn("developers")
    )
    lab = Project.objects.create(name="lab", owner_id=1)
    Member.objects.create(project=lab, group=developers, role=Role.GUEST)
    client, _ = sign_in("alice", PASSWORDS["alice"])
    assert ">lab</a>" in client.get("/").content.decode()


def test_the_refresh_job_follows_the_directory(admin, tmp_path):
    import ldap as python_ldap

    from accounts import tasks
    from tests.ldap_server import ldap_server

    with ldap_server(tmp_path / "slapd") as own:
        providers.provider_create(
            actor=admin,
            kind="ldap",
            name="own",
            config=own.provider_config(),
            secret=READER_PASSWORD,
        )
        for name in ("alice", "carol", "erin"):
            client, _ = sign_in(name, PASSWORDS[name])
            assert signed_in(client), name
        assert User.objects.get(username="carol").is_superuser

        def groups_of(name):
            rows = UserGroup.objects.filter(memberships__user__username=name)
            return set(rows.values_list("name", flat=True))

        assert groups_of("alice") == {"developers", "engineering"}
        assert groups_of("erin") == {"engineering"}
        own.modify(group_dn("developers"), [(python_ldap.MOD_ADD, "member", [user_dn("dave")])])
        own.modify(group_dn("developers"), [(python_ldap.MOD_DELETE, "member", [user_dn("alice")])])
        own.modify(group_dn("berth-admins"), [(python_ldap.MOD_ADD, "member", [user_dn("dave")])])
        own.modify(
            group_dn("berth-admins"), [(python_ldap.MOD_DELETE, "member", [user_dn("carol")])]
        )
        conn = own.connection()
        conn.delete_s(user_dn("erin"))
        conn.unbind_s()
        done = tasks.refresh_directories()
        assert done == {"own": {"refreshed": 2, "gone": 1, "failed": 0}}
        assert groups_of("alice") == set()
        assert groups_of("erin") == set()
        assert not User.objects.get(username="carol").is_superuser
        # The scheduled run takes its period once.
        assert tasks.refresh_directories(scheduled=True) == done
        assert tasks.refresh_directories(scheduled=True) == {}


def test_a_malformed_url_is_a_clear_refusal(admin):
    """libldap refuses "ldap://[bad" before any connection: a 400's message."""
    with pytest.raises(Invalid, match="not a usable LDAP URL"):
        providers.provider_ping(
            actor=admin,
            kind="ldap",
            config={"url": "ldap://[bad", "base_dn": "dc=example,dc=org"},
            secret="x",
        )


def test_a_disabled_provider_ends_its_users_browser_sessions(corp, admin):
    client, _ = sign_in("alice", PASSWORDS["alice"])
    assert client.get("/api/v2.0/users/current").json()["username"] == "alice"
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": False})
    assert client.get("/api/v2.0/users/current").status_code == 401
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": True})
    assert client.get("/api/v2.0/users/current").json()["username"] == "alice"


def test_a_disabled_provider_kills_its_users_refresh_tokens(corp, admin):
    from tests.accounts.test_principals import refreshed

    r = api("alice", PASSWORDS["alice"]).get(
        "/service/token?service=harbor-registry&offline_token=true"
    )
    refresh_token = r.json()["refresh_token"]
    assert refreshed(refresh_token) == 200
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": False})
    assert refreshed(refresh_token) == 401
    providers.provider_update(actor=admin, provider_id=corp.pk, changes={"enabled": True})
    assert refreshed(refresh_token) == 401


def test_the_outbound_address_policy_covers_directories(corp, admin, settings):
    # The cloud metadata address is denied by default.
    with pytest.raises(Invalid, match="refused"):
        providers.provider_ping(
            actor=admin,
            kind="ldap",
            config={"url": "ldap://169.254.169.254", "base_dn": "dc=x"},
        )
    settings.BERTH_OUTBOUND_DENY = ["127.0.0.0/8"]
    with pytest.raises(Invalid, match="refused: a denied network"):
        providers.provider_ping(actor=admin, provider_id=corp.pk)
    client, _ = sign_in("alice", PASSWORDS["alice"])
    assert not signed_in(client)


def test_the_providers_secret_and_users_passwords_never_reach_the_log(corp, admin, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    sign_in("alice", PASSWORDS["alice"])
    sign_in("alice", "wrong-password-1")
    sign_in("*)(uid=*", PASSWORDS["bob"])
    providers.provider_ping(actor=admin, provider_id=corp.pk)
    with pytest.raises(Invalid):
        providers.provider_ping(actor=admin, provider_id=corp.pk, secret="wrong-secret-1")
    text = caplog.text
    # django-auth-ldap logged its binds and searches at DEBUG: they were captured.
    assert "django_auth_ldap" in {record.name for record in caplog.records}
    for secret in (READER_PASSWORD, PASSWORDS["alice"], "wrong-password-1", PASSWORDS["bob"]):
        assert secret not in text
