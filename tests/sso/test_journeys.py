"""Sign-in journeys in a real browser (Debian's Chromium, the portal's harness:
tests/test_browser.py) between a live Berth and the real providers, all on the
loopback: every page the browser lands on is checked to be on this machine.

- OIDC (npm's oidc-provider): the sign-in page's button → the provider's form
  → back in the portal, whose dashboard lists the project a group from the
  groups claim is a member of, with the group's role; signing out of the portal
  signs out of the provider (the next sign-in asks for the login again).
- CAS (django-mama-cas): the button → the CAS form → the portal with the
  project of the CAS group; signing out at the CAS server ends the portal's
  session too (single logout: the server calls Berth back).
- A disabled provider: no button, its sign-in refused; local users sign in."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.conftest import BerthServer
from tests.sso.conftest import CAS_USERS, CLIENT_SECRET, oidc_clients, oidc_config
from tests.sso.peers import LOOPBACK, CasPeer, OidcPeer
from tests.support import wait_until
from tests.test_browser import click_and_wait

pytestmark = pytest.mark.live

PASSWORD = "Journey123"


class World:
    def __init__(self, berth: BerthServer, op: OidcPeer, cas: CasPeer) -> None:
        self.berth, self.op, self.cas = berth, op, cas
        self.api = f"{berth.url}/api/v2.0"


def _ok(r, *codes: int) -> None:
    assert r.status_code in (codes or (200, 201)), r.text


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sso-journeys")
    berth = BerthServer(root / "data")
    op = OidcPeer(
        root / "op",
        clients=oidc_clients(berth.url),
        accounts={
            "alice": {"email": "alice@example.com", "name": "Alice", "groups": ["dev-team"]},
        },
    )
    cas = CasPeer(root / "cas", services=[f"^{berth.url}/"], users=CAS_USERS)
    try:
        berth.start()
        op.start()
        cas.start()
        http, api = berth.http, f"{berth.url}/api/v2.0"
        _ok(
            http.post(
                f"{api}/berth/identity-providers",
                json={
                    "kind": "oidc",
                    "name": "corp-sso",
                    "secret": CLIENT_SECRET,
                    "config": oidc_config(op.issuer),
                },
            )
        )
        _ok(
            http.post(
                f"{api}/berth/identity-providers",
                json={
                    "kind": "cas",
                    "name": "campus",
                    "config": {"server_url": cas.server_url, "group_filter": "-team$"},
                },
            )
        )
        for project, group in (("team-oidc", "dev-team"), ("team-cas", "ops-team")):
            _ok(http.post(f"{api}/projects", json={"project_name": project}))
            group_type = 3 if project == "team-oidc" else 2
            _ok(
                http.post(f"{api}/usergroups", json={"group_name": group, "group_type": group_type})
            )
            _ok(
                http.post(
                    f"{api}/projects/{project}/members",
                    json={
                        "role_id": 2 if project == "team-oidc" else 4,
                        "member_group": {"group_name": group, "group_type": group_type},
                    },
                )
            )
        _ok(
            http.post(
                f"{api}/users",
                json={"username": "local", "password": PASSWORD, "email": "local@example.com"},
            )
        )
        yield World(berth, op, cas)
    finally:
        cas.stop()
        op.stop()
        berth.stop()


def on_loopback(driver: webdriver.Chrome) -> str:
    url = driver.current_url
    assert urlsplit(url).hostname in LOOPBACK, f"the browser left the machine: {url}"
    return url


def go(driver: webdriver.Chrome, url: str) -> None:
    assert urlsplit(url).hostname in LOOPBACK, url
    driver.get(url)
    on_loopback(driver)


def click(driver: webdriver.Chrome, css: str) -> None:
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, css))
    on_loopback(driver)


def portal_text(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def sign_out_of_portal(driver: webdriver.Chrome) -> None:
    # The admin header's "Log out" (a POST form).
    click(driver, "#logout-form button, #logout-form input[type=submit]")


def test_oidc_journey_sign_in_sees_the_groups_project_and_signs_out_everywhere(world, browser):
    url = world.berth.url
    go(browser, f"{url}/")
    click(browser, "#berth-sso-corp-sso")
    assert on_loopback(browser).startswith(world.op.issuer)
    browser.find_element(By.NAME, "login").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys("any")
    click(browser, "button[type=submit]")
    if on_loopback(browser).startswith(world.op.issuer):  # the consent prompt
        click(browser, "button[type=submit]")
    wait_until(lambda: on_loopback(browser) == f"{url}/", what=lambda: browser.current_url)
    text = portal_text(browser)
    assert "team-oidc" in text and "Developer" in text and "team-cas" not in text

    sign_out_of_portal(browser)
    # Through the provider's end-session page (it submits itself) back home.
    wait_until(lambda: on_loopback(browser) == f"{url}/", what=lambda: browser.current_url)
    assert browser.find_elements(By.ID, "berth-sso-corp-sso")  # the sign-in page
    # The provider's session is over too: its login form again.
    click(browser, "#berth-sso-corp-sso")
    assert on_loopback(browser).startswith(world.op.issuer)
    assert browser.find_elements(By.NAME, "login")
    # The client secret is in none of Berth's answers or its log.
    assert CLIENT_SECRET not in world.berth.log_path.read_text()
    listing = world.berth.http.get(f"{world.api}/berth/identity-providers")
    assert listing.status_code == 200 and CLIENT_SECRET not in listing.text


def test_cas_journey_and_single_logout(world, browser):
    url = world.berth.url
    go(browser, f"{url}/")
    click(browser, "#berth-sso-campus")
    assert on_loopback(browser).startswith(world.cas.url)
    browser.find_element(By.NAME, "username").send_keys("dave")
    browser.find_element(By.NAME, "password").send_keys(CAS_USERS["dave"]["password"])
    click(browser, "button[type=submit], input[type=submit]")
    wait_until(lambda: on_loopback(browser) == f"{url}/", what=lambda: browser.current_url)
    text = portal_text(browser)
    assert "team-cas" in text and "Maintainer" in text and "team-oidc" not in text

    # Signing out at the CAS server: it calls Berth back; the portal's session ends.
    go(browser, f"{world.cas.server_url}logout")
    go(browser, f"{url}/")
    assert browser.find_elements(By.ID, "berth-sso-campus")
    assert "team-cas" not in portal_text(browser)


def test_a_disabled_provider_cannot_sign_in_while_local_users_can(world, browser):
    http, api, url = world.berth.http, world.api, world.berth.url
    providers = {p["name"]: p["id"] for p in http.get(f"{api}/berth/identity-providers").json()}
    _ok(
        http.put(f"{api}/berth/identity-providers/{providers['corp-sso']}", json={"enabled": False})
    )
    try:
        go(browser, f"{url}/")
        assert not browser.find_elements(By.ID, "berth-sso-corp-sso")
        assert browser.find_elements(By.ID, "berth-sso-campus")
        go(browser, f"{url}/c/oidc/login?provider=corp-sso")
        assert browser.find_elements(By.ID, "berth-sso-error")
        go(browser, f"{url}/")
        browser.find_element(By.NAME, "username").send_keys("local")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        click(browser, "input[type=submit]")
        assert on_loopback(browser) == f"{url}/"
        assert "Dashboard" in browser.title or browser.find_elements(By.ID, "logout-form")
    finally:
        _ok(
            http.put(
                f"{api}/berth/identity-providers/{providers['corp-sso']}", json={"enabled": True}
            )
        )
