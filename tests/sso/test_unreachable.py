"""A CAS server that does not answer or is gone: the ticket's validation fails
with a 502 after the provider's timeout (guarded client), nobody is signed in,
and local sign-in is unaffected. (The OpenID Provider's twin is in
test_oidc_hostile.py.)"""

from __future__ import annotations

from django.test import Client

from accounts.services import providers
from tests.conftest import ADMIN
from tests.sso.conftest import SYSADMIN
from tests.support import free_port


def test_a_silent_or_gone_cas_server_fails_alone(bootstrapped, blackhole_port):
    for name, port in (("silent", blackhole_port), ("gone", free_port())):
        providers.provider_create(
            actor=SYSADMIN,
            kind="cas",
            name=name,
            config={"server_url": f"http://127.0.0.1:{port}/cas/", "timeout": 1},
        )
        client = Client()
        r = client.get(f"/c/cas/{name}/login")
        assert r.status_code == 302 and r["Location"].startswith(
            f"http://127.0.0.1:{port}/cas/login?"
        )
        r = client.get(f"/c/cas/{name}/login?ticket=ST-1-abc")
        assert r.status_code == 502 and b"cannot be reached" in r.content
        assert client.get("/api/v2.0/users/current").status_code == 401
    r = Client().post("/c/login", {"principal": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200


def test_a_cas_server_on_a_denied_address_is_never_asked(bootstrapped):
    providers.provider_create(
        actor=SYSADMIN,
        kind="cas",
        name="metadata",
        config={"server_url": "http://169.254.169.254/cas/"},
    )
    r = Client().get("/c/cas/metadata/login?ticket=ST-1-abc")
    assert r.status_code == 502
