"""OpenID Connect sign-in against a real OpenID Provider (npm's oidc-provider,
tests/sso/peers.py) with Berth in-process: Django's test client is Berth's
side of the browser, ``LoopbackBrowser`` the provider's side.

The whole flow: /c/oidc/login → the provider's form → /c/oidc/callback →
signed in, bound by (provider, sub), groups from the claim (filtered) as OIDC
user groups with their project roles, the admin group as sysadmin, the
refresh token kept sealed; a taken name goes through onboarding; sign-out ends
the provider's session too. And what must fail: a forged or replayed state, a
missing nonce, an ID token for another client or from another issuer, an
expired one, a disabled or unreachable provider (local sign-in unaffected)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.models import (
    ExternalIdentity,
    GroupMembership,
    Member,
    OidcToken,
    Project,
    Role,
    User,
    UserGroup,
)
from accounts.services import providers
from kit import sealed
from tests.sso.conftest import CLIENT_SECRET, SYSADMIN, oidc_config
from tests.sso.peers import LoopbackBrowser, forms

pytestmark = pytest.mark.live


@pytest.fixture
def provider(bootstrapped, oidc_peer):
    return providers.provider_create(
        actor=SYSADMIN,
        kind="oidc",
        name="corp-sso",
        config=oidc_config(oidc_peer.issuer),
        secret=CLIENT_SECRET,
    )


def to_provider(client: Client, query: str = "") -> str:
    r = client.get(f"/c/oidc/login{query}")
    assert r.status_code == 302, r.content
    return r["Location"]


def sign_in_at_provider(browser: LoopbackBrowser, authorize: str, login: str) -> str:
    """The provider's part: its login form, then the redirect back to Berth
    (returned, not followed)."""
    page = browser.get(authorize)
    assert page.status_code == 200, page.text
    assert "login" in forms(page.text)[0][2]
    back = browser.submit(page, {"login": login, "password": "any"}, stop_at="http://testserver/")
    if back.status_code == 200 and forms(back.text)[0][2].get("prompt") == "consent":
        # offline_access (a refresh token) is asked with prompt=consent: "Continue".
        back = browser.submit(back, {}, stop_at="http://testserver/")
    target = back.headers.get("X-Stopped-At", "")
    assert target.startswith("http://testserver/c/oidc/callback?"), (
        back.status_code,
        back.text[:500],
    )
    return target


def callback(client: Client, target: str):
    parts = urlsplit(target)
    return client.get(f"{parts.path}?{parts.query}")


def test_first_sign_in_creates_the_user_with_groups_and_roles(provider):
    team = Project.objects.create(name="team-x", owner_id=1)
    group = UserGroup.objects.create(name="dev-team", type=UserGroup.Type.OIDC, provider=provider)
    Member.objects.create(project=team, group=group, role=Role.DEVELOPER)
    client, browser = Client(), LoopbackBrowser()

    authorize = to_provider(client, "?provider=corp-sso&next=/search/")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    r = callback(client, sign_in_at_provider(browser, authorize, "alice"))

    assert r.status_code == 302 and r["Location"] == "/search/", r.content
    user = User.objects.get(username="alice")
    assert user.email == "alice@example.com" and not user.has_usable_password()
    assert not user.is_superuser
    identity = ExternalIdentity.objects.get(provider=provider, user=user)
    assert identity.subject == "alice"
    # "ignored" does not match the filter; "dev-team" is the existing group.
    assert list(
        GroupMembership.objects.filter(user=user).values_list("group__name", flat=True)
    ) == ["dev-team"]
    token = OidcToken.objects.get(identity=identity)
    assert sealed.unseal(token.refresh_sealed) and token.refresh_sealed.startswith(sealed.PREFIX)
    # Signed in: the dashboard lists the group's project with its role.
    page = client.get("/")
    assert page.status_code == 200 and b"team-x" in page.content and b"Developer" in page.content


def test_the_admin_group_makes_a_sysadmin_and_a_second_sign_in_binds_by_subject(provider):
    client, browser = Client(), LoopbackBrowser()
    callback(client, sign_in_at_provider(browser, to_provider(client), "bob"))
    bob = User.objects.get(username="bob")
    assert bob.is_superuser and bob.is_staff
    bob.username = "robert"  # renamed in Berth: still the same identity
    bob.save()
    client2, browser2 = Client(), LoopbackBrowser()
    r = callback(client2, sign_in_at_provider(browser2, to_provider(client2), "bob"))
    assert r.status_code == 302
    assert not User.objects.filter(username="bob").exists()
    assert client2.get("/api/v2.0/users/current").json()["username"] == "robert"
    # Another admin group configured: his next sign-in is no sysadmin's.
    providers.provider_update(
        actor=SYSADMIN, provider_id=provider.pk, changes={"config": {"admin_group": "berth-ops"}}
    )
    client3 = Client()
    callback(client3, sign_in_at_provider(LoopbackBrowser(), to_provider(client3), "bob"))
    robert = User.objects.get(username="robert")
    assert not robert.is_superuser and not robert.is_staff
    assert client3.get("/api/v2.0/users/current").json()["sysadmin_flag"] is False


def test_a_taken_name_goes_through_onboarding(provider):
    client, browser = Client(), LoopbackBrowser()
    r = callback(client, sign_in_at_provider(browser, to_provider(client), "carol"))
    assert r.status_code == 302 and r["Location"] == "/c/oidc/onboard"
    page = client.get("/c/oidc/onboard")
    assert page.status_code == 200 and b"admin" in page.content
    taken = client.post("/c/oidc/onboard", {"username": "admin"})
    assert taken.status_code == 400 and b"taken" in taken.content
    done = client.post("/c/oidc/onboard", {"username": "carol-c"})
    assert done.status_code == 302
    carol = User.objects.get(username="carol-c")
    assert ExternalIdentity.objects.get(provider=provider, subject="carol").user == carol
    assert not User.objects.get(username="admin").identities.exists()
    assert client.get("/api/v2.0/users/current").json()["username"] == "carol-c"


def test_sign_out_ends_the_providers_session_too(provider, oidc_peer):
    client, browser = Client(), LoopbackBrowser()
    callback(client, sign_in_at_provider(browser, to_provider(client), "alice"))
    r = client.post("/c/sso/logout")
    assert r.status_code == 302
    end = r["Location"]
    assert end.startswith(oidc_peer.issuer) and "id_token_hint=" in end
    assert client.get("/api/v2.0/users/current").status_code == 401
    # The provider's logout page submits itself; then its session is gone: a
    # new sign-in asks for the login again.
    page = browser.get(end)
    assert forms(page.text)[0][0].endswith("/session/end/confirm")
    done = browser.submit(page, {"logout": "yes"}, stop_at="http://testserver/")
    assert done.headers.get("X-Stopped-At") == "http://testserver/"
    again = browser.get(to_provider(Client()))
    assert "login" in forms(again.text)[0][2]


def test_the_same_subject_at_another_provider_is_someone_else(provider, oidc_peer):
    """Binding is by (provider, subject), never by name: Alice of a second
    provider is not Alice of the first, and must choose a name of her own
    (the onboarding form, with its CSRF token, as a browser posts it)."""
    providers.provider_create(
        actor=SYSADMIN,
        kind="oidc",
        name="corp-2",
        config=oidc_config(oidc_peer.issuer),
        secret=CLIENT_SECRET,
    )
    first = Client()
    callback(first, sign_in_at_provider(LoopbackBrowser(), to_provider(first), "alice"))
    alice = User.objects.get(username="alice")

    second = Client(enforce_csrf_checks=True)
    r = callback(
        second,
        sign_in_at_provider(LoopbackBrowser(), to_provider(second, "?provider=corp-2"), "alice"),
    )
    assert r["Location"] == "/c/oidc/onboard"
    assert second.post("/c/oidc/onboard", {"username": "alice-2"}).status_code == 403  # no token
    page = second.get("/c/oidc/onboard").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    done = second.post("/c/oidc/onboard", {"username": "alice-2", "csrfmiddlewaretoken": token})
    assert done.status_code == 302
    assert second.get("/api/v2.0/users/current").json()["username"] == "alice-2"
    assert list(alice.identities.values_list("provider__name", flat=True)) == ["corp-sso"]
    assert ExternalIdentity.objects.get(provider__name="corp-2", subject="alice").user.username == (
        "alice-2"
    )


def test_a_suggested_name_berth_cannot_use_goes_through_onboarding(provider):
    """Harbor's default user claim is ``name``: "Alice A" is no valid user name."""
    providers.provider_update(
        actor=SYSADMIN, provider_id=provider.pk, changes={"config": {"user_claim": "name"}}
    )
    client = Client()
    r = callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice"))
    assert r["Location"] == "/c/oidc/onboard"
    bad = client.post("/c/oidc/onboard", {"username": "Alice A"})
    assert bad.status_code == 400 and b"without spaces" in bad.content
    assert client.post("/c/oidc/onboard", {"username": "alice.a"}).status_code == 302
    assert client.get("/api/v2.0/users/current").json()["username"] == "alice.a"
