"""The sign-in page's SSO buttons (no provider is contacted): one per enabled
OpenID Provider and CAS server, in the providers' order, none for LDAP (its
users sign in with the form) or disabled ones; the admin's sign-in page has
them too. And the flow's state is bound to the browser's session."""

from __future__ import annotations

import re

from django.test import Client

from accounts.services import providers
from tests.sso.conftest import SYSADMIN

BUTTON = re.compile(r'id="berth-sso-([^"]+)" href="([^"]+)"')


def make(kind: str, name: str, **kwargs):
    config = (
        {"issuer": "http://127.0.0.1:9", "client_id": "berth"}
        if kind == "oidc"
        else {"server_url": "http://127.0.0.1:9/cas/"}
    )
    return providers.provider_create(actor=SYSADMIN, kind=kind, name=name, config=config, **kwargs)


def test_one_button_per_enabled_provider_in_order(bootstrapped):
    make("cas", "campus", order=3)
    make("oidc", "corp", order=1)
    make("oidc", "old", order=2, enabled=False)
    for path in ("/", "/admin/login/"):
        page = Client().get(path).content.decode()
        assert BUTTON.findall(page) == [
            ("corp", "/c/oidc/login?provider=corp"),
            ("campus", "/c/cas/campus/login"),
        ], path
        assert 'name="password"' in page  # local sign-in stays


def test_no_provider_no_buttons(bootstrapped):
    assert "berth-sso" not in Client().get("/").content.decode()


def test_a_callback_without_a_flow_of_this_session_is_refused(bootstrapped):
    make("oidc", "corp")
    r = Client().get("/c/oidc/callback?code=abc&state=made-up")
    assert r.status_code == 400 and b"state" in r.content
    assert Client().get("/c/oidc/onboard").status_code == 400
    # A provider's single-logout message for no known ticket ends nothing.
    r = Client().post("/c/cas/none/login", {"logoutRequest": "<x/>"})
    assert r.status_code == 400
