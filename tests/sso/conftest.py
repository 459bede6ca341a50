"""The identity providers of the SSO tests (tests/sso/peers.py), one of each
per test session, and helpers that create Berth's providers for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.access import Actor
from tests.sso.peers import CasPeer, OidcPeer, running
from tests.test_browser import browser  # noqa: F401 - a fixture (the journeys)

SYSADMIN = Actor(kind="user", id=1, name="admin", sysadmin=True)

CLIENT_ID = "berth"
CLIENT_SECRET = "op-client-secret-9f2c71"  # searched for in logs and answers
OTHER_CLIENT_ID = "another-app"
# Berth under test: Django's test client ("testserver") and the live servers'
# loopback ports share these redirect URIs (oidc-provider checks them exactly).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "name": "Alice A", "groups": ["dev-team", "ignored"]},
    "bob": {"email": "bob@example.com", "name": "Bob B", "groups": ["berth-admins"]},
    # Her preferred name is a local user's: onboarding.
    "carol": {
        "email": "carol@example.com",
        "name": "Carol C",
        "groups": [],
        "preferred_username": "admin",
    },
}
CAS_USERS: dict[str, dict[str, Any]] = {
    "dave": {
        "password": "Dave12345",
        "email": "dave@example.com",
        "name": "Dave D",
        "groups": ["ops-team"],
    },
}


def oidc_clients(*berth_urls: str) -> list[dict[str, Any]]:
    redirects = [f"{u}/c/oidc/callback" for u in berth_urls]
    logouts = [f"{u}/" for u in berth_urls]
    return [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirects,
            "post_logout_redirect_uris": logouts,
        },
        {
            "client_id": OTHER_CLIENT_ID,
            "client_secret": "another-secret",
            "redirect_uris": redirects,
            "post_logout_redirect_uris": logouts,
        },
    ]


@pytest.fixture(scope="session")
def oidc_peer(tmp_path_factory) -> Iterator[OidcPeer]:
    """oidc-provider for Berth in-process (http://testserver)."""
    peer = OidcPeer(
        tmp_path_factory.mktemp("oidc-peer"),
        clients=oidc_clients("http://testserver"),
        accounts=ACCOUNTS,
    )
    with running(peer) as started:
        yield started


@pytest.fixture(scope="session")
def cas_peer(tmp_path_factory) -> Iterator[CasPeer]:
    peer = CasPeer(
        tmp_path_factory.mktemp("cas-peer"),
        services=[r"^http://testserver/"],
        users=CAS_USERS,
    )
    with running(peer) as started:
        yield started


def oidc_config(issuer: str, **overrides: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "scope": "openid profile email groups offline_access",
        "groups_claim": "groups",
        "group_filter": "^(dev|berth)-",
        "admin_group": "berth-admins",
        **overrides,
    }
