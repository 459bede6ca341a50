"""What an OpenID sign-in must refuse, against the real provider
(tests/sso/peers.py): a forged or replayed ``state``, an ID token without this
sign-in's nonce, ID tokens issued to another client, by another issuer or
expired (in the callback and as ``Authorization: Bearer`` on the API), a
provider that does not answer (local sign-in keeps working), and the client
secret never in a log or an answer."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import Client

from accounts import oidc
from accounts.models import ExternalIdentity, User
from accounts.services import providers
from tests.conftest import ADMIN
from tests.sso.conftest import (
    ACCOUNTS,
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    SYSADMIN,
    oidc_clients,
    oidc_config,
)
from tests.sso.peers import LoopbackBrowser, OidcPeer, running
from tests.sso.test_oidc import callback, sign_in_at_provider, to_provider

pytestmark = pytest.mark.live

REDIRECT = "http://testserver/c/oidc/callback"


@pytest.fixture
def provider(bootstrapped, oidc_peer):
    return providers.provider_create(
        actor=SYSADMIN,
        kind="oidc",
        name="corp-sso",
        config=oidc_config(oidc_peer.issuer),
        secret=CLIENT_SECRET,
    )


def bearer(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_state_answers_once_and_only_to_its_own_browser(provider):
    client = Client()
    target = sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice")
    # Another browser (an attacker handing over their callback) is refused.
    other = Client()
    assert callback(other, target).status_code == 400
    assert other.get("/api/v2.0/users/current").status_code == 401
    forged = target.replace("state=", "state=x")
    assert callback(client, forged).status_code == 400
    # A forged state consumed nothing: the real one still works, once.
    assert callback(client, target).status_code == 302
    assert callback(Client(), target).status_code == 400
    replay = client.get(urlsplit(target).path + "?" + urlsplit(target).query)
    assert replay.status_code == 400 and b"state" in replay.content


def test_an_id_token_without_the_nonce_is_refused(provider):
    client = Client()
    authorize = to_provider(client)
    parts = urlsplit(authorize)
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k != "nonce"}
    stripped = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"
    r = callback(client, sign_in_at_provider(LoopbackBrowser(), stripped, "alice"))
    assert r.status_code == 400 and b"refused" in r.content
    assert not User.objects.filter(username="alice").exists()
    assert client.get("/api/v2.0/users/current").status_code == 401


def test_bearer_id_tokens_only_of_this_client_issuer_and_unexpired(provider, oidc_peer, tmp_path):
    # Alice signs in once through the browser flow (her identity is bound).
    client = Client()
    callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice"))
    assert ExternalIdentity.objects.filter(provider=provider, subject="alice").exists()
    config = oidc.settings_of(provider)

    mine = oidc_peer.tokens(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login="alice", redirect_uri=REDIRECT
    )["id_token"]
    r = bearer(mine).get("/api/v2.0/users/current")
    assert r.status_code == 200 and r.json()["username"] == "alice"

    # Issued by the same provider to another client: its audience is not ours.
    theirs = oidc_peer.tokens(
        client_id=OTHER_CLIENT_ID,
        client_secret="another-secret",
        login="alice",
        redirect_uri=REDIRECT,
    )["id_token"]
    assert jwt.decode(theirs, options={"verify_signature": False})["aud"] == OTHER_CLIENT_ID
    with pytest.raises(SuspiciousOperation, match=r"(?i)audience"):
        oidc.verify_id_token(config, theirs, nonce=None)
    assert bearer(theirs).get("/api/v2.0/users/current").status_code == 401

    # Another issuer (its own provider, same client id and subject).
    other = OidcPeer(
        tmp_path / "other", clients=oidc_clients("http://testserver"), accounts=ACCOUNTS
    )
    with running(other):
        foreign = other.tokens(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login="alice", redirect_uri=REDIRECT
        )["id_token"]
    with pytest.raises(SuspiciousOperation):
        oidc.verify_id_token(config, foreign, nonce=None)
    assert bearer(foreign).get("/api/v2.0/users/current").status_code == 401

    # A signed token of ours with its claims altered is no longer ours.
    head, body, signature = mine.split(".")
    tampered = f"{head}.{body[:-2]}AA.{signature}"
    assert bearer(tampered).get("/api/v2.0/users/current").status_code == 401


def test_an_expired_id_token_is_refused(bootstrapped, tmp_path, monkeypatch):
    peer = OidcPeer(
        tmp_path / "short",
        clients=oidc_clients("http://testserver"),
        accounts=ACCOUNTS,
        id_token_ttl=1,
    )
    with running(peer):
        provider = providers.provider_create(
            actor=SYSADMIN,
            kind="oidc",
            name="short",
            config=oidc_config(peer.issuer),
            secret=CLIENT_SECRET,
        )
        client = Client()
        callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice"))
        token = peer.tokens(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login="alice", redirect_uri=REDIRECT
        )["id_token"]
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        monkeypatch.setattr(oidc, "LEEWAY", 0)
        # Ageing the token past its expiry: a slower machine only ages it more.
        time.sleep(max(0.0, expires + 1 - time.time()))
        with pytest.raises(SuspiciousOperation, match=r"(?i)expired"):
            oidc.verify_id_token(oidc.settings_of(provider), token, nonce=None)
        assert bearer(token).get("/api/v2.0/users/current").status_code == 401


def test_an_unreachable_or_silent_provider_fails_alone(bootstrapped, blackhole_port):
    from tests.support import free_port

    closed = free_port()
    for name, issuer in (
        ("silent", f"http://127.0.0.1:{blackhole_port}"),
        ("gone", f"http://127.0.0.1:{closed}"),
    ):
        providers.provider_create(
            actor=SYSADMIN,
            kind="oidc",
            name=name,
            config=oidc_config(issuer, timeout=1),
            secret=CLIENT_SECRET,
        )
        r = Client().get(f"/c/oidc/login?provider={name}")
        assert r.status_code == 502 and b"cannot be reached" in r.content
    # Local users sign in as ever.
    r = Client().post("/c/login", {"principal": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200
    assert (
        Client(
            HTTP_AUTHORIZATION="Basic "
            + __import__("base64").b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        )
        .get("/api/v2.0/users/current")
        .status_code
        == 200
    )


def test_a_disabled_provider_signs_nobody_in_and_ends_its_sessions(provider):
    signed_in = Client()
    callback(signed_in, sign_in_at_provider(LoopbackBrowser(), to_provider(signed_in), "bob"))
    assert signed_in.get("/api/v2.0/users/current").status_code == 200
    client = Client()
    target = sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice")
    providers.provider_update(actor=SYSADMIN, provider_id=provider.pk, changes={"enabled": False})
    assert callback(client, target).status_code == 400
    assert Client().get("/c/oidc/login?provider=corp-sso").status_code == 404
    assert client.get("/api/v2.0/users/current").status_code == 401
    assert not User.objects.filter(username="alice").exists()
    # Bob's session from before ends with the provider; local users' do not.
    assert signed_in.get("/api/v2.0/users/current").status_code == 401
    local = Client()
    assert local.post("/c/login", {"principal": ADMIN[0], "password": ADMIN[1]}).status_code == 200
    assert local.get("/api/v2.0/users/current").status_code == 200
    # Enabled again, Bob signs in again as the same user.
    providers.provider_update(actor=SYSADMIN, provider_id=provider.pk, changes={"enabled": True})
    again = Client()
    callback(again, sign_in_at_provider(LoopbackBrowser(), to_provider(again), "bob"))
    assert again.get("/api/v2.0/users/current").json()["username"] == "bob"


def test_the_client_secret_is_in_no_log(provider, caplog):
    caplog.set_level(logging.DEBUG)
    client = Client()
    callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice"))
    # And a refused exchange (a wrong secret) logs why, not the secret.
    providers.provider_update(
        actor=SYSADMIN, provider_id=provider.pk, changes={"secret": "wrong-" + CLIENT_SECRET}
    )
    client2 = Client()
    r = callback(client2, sign_in_at_provider(LoopbackBrowser(), to_provider(client2), "bob"))
    assert r.status_code == 400
    assert "refused the code" in caplog.text
    assert CLIENT_SECRET not in caplog.text
    assert CLIENT_SECRET not in r.content.decode()


def test_the_provider_is_reached_only_through_the_outbound_policy(provider, oidc_peer, settings):
    """Every call to the provider goes through kit/outbound: with the loopback
    denied, the running provider is never reached (discovery, a ping, a bearer
    token's keys); allowed again, it is."""
    from django.core.cache import caches

    client = Client()
    callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "alice"))
    token = oidc_peer.tokens(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, login="alice", redirect_uri=REDIRECT
    )["id_token"]
    settings.BERTH_OUTBOUND_DENY = ["127.0.0.0/8"]
    caches["local"].clear()  # nothing discovered before the policy changed
    assert Client().get("/c/oidc/login?provider=corp-sso").status_code == 502
    with pytest.raises(oidc.ProviderError, match="unreachable"):
        oidc.discover(oidc.settings_of(provider), fresh=True)
    assert bearer(token).get("/api/v2.0/users/current").status_code == 401
    settings.BERTH_OUTBOUND_DENY = []
    assert bearer(token).get("/api/v2.0/users/current").status_code == 200
