"""CAS sign-in against a real CAS server (django-mama-cas in its own process,
tests/sso/peers.py) with Berth in-process: the login redirect, the ticket
validated (CAS 3.0 and 2.0) with its attributes, the groups as user groups, a
replayed ticket refused, a disabled provider refused. Single logout (the
server calling Berth back) is in the browser journey (test_journeys.py), where
Berth listens on a port the server can reach."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.models import ExternalIdentity, GroupMembership, User
from accounts.services import providers
from tests.sso.conftest import CAS_USERS, SYSADMIN
from tests.sso.peers import LoopbackBrowser

pytestmark = pytest.mark.live


@pytest.fixture
def provider(bootstrapped, cas_peer):
    return providers.provider_create(
        actor=SYSADMIN,
        kind="cas",
        name="campus",
        config={
            "server_url": cas_peer.server_url,
            "version": 3,
            "groups_attribute": "groups",
            "group_filter": "-team$",
        },
    )


def ticket_url(client: Client, user: str = "dave") -> str:
    """Sign in at the CAS server; the service URL with the ticket it sends
    the browser back to (not followed)."""
    r = client.get("/c/cas/campus/login")
    assert r.status_code == 302, r.content
    login = r["Location"]
    service = parse_qs(urlsplit(login).query)["service"][0]
    assert service == "http://testserver/c/cas/campus/login"
    browser = LoopbackBrowser()
    page = browser.get(login)
    assert page.status_code == 200
    back = browser.submit(
        page,
        {"username": user, "password": CAS_USERS[user]["password"]},
        stop_at="http://testserver/",
    )
    target = back.headers.get("X-Stopped-At", "")
    assert target.startswith(service + "?ticket=ST-"), (back.status_code, back.text[:300])
    return target


def follow(client: Client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


@pytest.mark.parametrize("version", [3, 2])
def test_sign_in_creates_the_user_with_attributes_and_groups(provider, version):
    providers.provider_update(
        actor=SYSADMIN, provider_id=provider.pk, changes={"config": {"version": version}}
    )
    client = Client()
    r = follow(client, ticket_url(client))
    assert r.status_code == 302 and r["Location"] == "/", r.content
    dave = User.objects.get(username="dave")
    assert ExternalIdentity.objects.get(provider=provider, subject="dave").user == dave
    assert client.get("/api/v2.0/users/current").json()["username"] == "dave"
    if version == 3:  # CAS 2.0 releases no attributes
        assert dave.email == "dave@example.com"
        groups = GroupMembership.objects.filter(user=dave).values_list("group__name", flat=True)
        assert list(groups) == ["ops-team"]


def test_a_replayed_ticket_is_refused(provider):
    client = Client()
    url = ticket_url(client)
    assert follow(client, url).status_code == 302
    thief = Client()
    r = follow(thief, url)
    assert r.status_code == 400 and b"ticket was refused" in r.content
    assert thief.get("/api/v2.0/users/current").status_code == 401


def test_a_disabled_provider_signs_nobody_in(provider):
    client = Client()
    url = ticket_url(client)
    provider.enabled = False
    provider.save()
    assert follow(client, url).status_code == 404
    assert client.get("/api/v2.0/users/current").status_code == 401
    assert not User.objects.filter(username="dave").exists()


def test_a_ticket_for_one_provider_is_refused_at_another(provider, cas_peer):
    """A service ticket is for its service URL: presented to another provider
    of the same CAS server (another service URL: the provider is in the path,
    which even servers that ignore the query compare), the server refuses it."""
    providers.provider_create(
        actor=SYSADMIN, kind="cas", name="campus-2", config={"server_url": cas_peer.server_url}
    )
    client = Client()
    url = ticket_url(client)
    ticket = parse_qs(urlsplit(url).query)["ticket"][0]
    r = client.get(f"/c/cas/campus-2/login?ticket={ticket}")
    assert r.status_code == 400
    assert client.get("/api/v2.0/users/current").status_code == 401
    assert not User.objects.filter(username="dave").exists()
