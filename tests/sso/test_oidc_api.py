"""Harbor's API for the primary OpenID Provider: ``/configurations`` oidc_*
keys (the client secret write-only: never in an answer), ``auth_mode``
``oidc_auth``, ``/system/oidc/ping`` against the real provider, and a
provider configured this way signs people in."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts import oidc
from accounts.services import providers
from tests.conftest import ADMIN, basic
from tests.sso.conftest import CLIENT_SECRET
from tests.sso.peers import LoopbackBrowser
from tests.sso.test_oidc import callback, sign_in_at_provider, to_provider

pytestmark = pytest.mark.live


def admin() -> Client:
    return Client(HTTP_AUTHORIZATION=basic(*ADMIN))


def put(client: Client, body: dict) -> int:
    r = client.put("/api/v2.0/configurations", json.dumps(body), content_type="application/json")
    return r.status_code


def test_configurations_make_the_primary_provider_and_never_show_its_secret(
    bootstrapped, oidc_peer
):
    api = admin()
    status = put(
        api,
        {
            "auth_mode": "oidc_auth",
            "oidc_name": "corp",
            "oidc_endpoint": oidc_peer.issuer,
            "oidc_client_id": "berth",
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_scope": "openid,profile,email,groups,offline_access",
            "oidc_groups_claim": "groups",
            "oidc_admin_group": "berth-admins",
            "oidc_verify_cert": False,
        },
    )
    assert status == 200
    provider = oidc.primary()
    assert provider is not None and provider.enabled and provider.name == "corp"
    assert provider.config["scope"] == "openid profile email groups offline_access"
    assert CLIENT_SECRET not in provider.secret_sealed
    assert providers.secret_of(provider) == CLIENT_SECRET

    r = api.get("/api/v2.0/configurations")
    assert r.status_code == 200
    body = r.json()
    assert "oidc_client_secret" not in body
    assert body["auth_mode"]["value"] == "oidc_auth"
    assert body["oidc_endpoint"] == {"value": oidc_peer.issuer, "editable": True}
    assert body["oidc_scope"]["value"] == "openid,profile,email,groups,offline_access"
    for path in (
        "/api/v2.0/configurations",
        "/api/v2.0/systeminfo",
        "/api/v2.0/berth/identity-providers",
        f"/api/v2.0/berth/identity-providers/{provider.pk}",
    ):
        assert CLIENT_SECRET not in api.get(path).content.decode(), path

    info = Client().get("/api/v2.0/systeminfo").json()
    assert info["auth_mode"] == "oidc_auth" and info["oidc_provider_name"] == "corp"

    # The provider so configured signs people in.
    client = Client()
    r = callback(client, sign_in_at_provider(LoopbackBrowser(), to_provider(client), "bob"))
    assert r.status_code == 302
    assert client.get("/api/v2.0/users/current").json()["sysadmin_flag"] is True

    # db_auth turns it off.
    assert put(api, {"auth_mode": "db_auth"}) == 200
    assert not oidc.primary().enabled
    assert Client().get("/c/oidc/login").status_code == 404
    assert Client().get("/api/v2.0/systeminfo").json()["oidc_provider_name"] == ""


def test_oidc_ping(bootstrapped, oidc_peer):
    from tests.support import free_port

    api = admin()
    ok = api.post(
        "/api/v2.0/system/oidc/ping",
        json.dumps({"url": oidc_peer.issuer, "verify_cert": True}),
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.content
    gone = api.post(
        "/api/v2.0/system/oidc/ping",
        json.dumps({"url": f"http://127.0.0.1:{free_port()}"}),
        content_type="application/json",
    )
    assert gone.status_code == 400 and "unreachable" in gone.json()["errors"][0]["message"]
    # Metadata addresses are refused by the guarded client, whatever answers there.
    meta = api.post(
        "/api/v2.0/system/oidc/ping",
        json.dumps({"url": "http://169.254.169.254"}),
        content_type="application/json",
    )
    assert meta.status_code == 400
    nobody = Client().post(
        "/api/v2.0/system/oidc/ping",
        json.dumps({"url": oidc_peer.issuer}),
        content_type="application/json",
    )
    assert nobody.status_code in (401, 403)
