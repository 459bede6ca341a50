"""Issue 16's journey in a real browser (Debian's Chromium, the fixture of
tests/test_browser.py) against a live Berth: a user signs in, opens My tokens
from the header, creates a token with the permission picker, copies its secret
(read back from the clipboard), `docker login`s with it, pushes and pulls;
revokes it on the page, and the next `docker pull` fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.clients import ClientError, DockerDaemon, build_scratch_image
from tests.conftest import BerthServer
from tests.portal.test_browser_journey import PASSWORD, follow, read_clipboard, sign_in
from tests.test_browser import click_and_wait

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BerthServer]:
    """A live Berth with the private project `tok`, where `sso` is a developer."""
    berth = BerthServer(tmp_path_factory.mktemp("tokens-journey") / "data").start()
    try:
        api = f"{berth.url}/api/v2.0"
        r = berth.http.post(
            f"{api}/users", json={"username": "sso", "password": PASSWORD, "email": "sso@x"}
        )
        assert r.status_code == 201, r.text
        assert berth.http.post(f"{api}/projects", json={"project_name": "tok"}).status_code == 201
        r = berth.http.post(
            f"{api}/projects/tok/members",
            json={"role_id": 2, "member_user": {"username": "sso"}},
        )
        assert r.status_code == 201, r.text
        yield berth
    finally:
        berth.stop()


def test_a_user_makes_a_token_logs_docker_in_and_revokes_it(server, browser, tmp_path):
    url = server.url
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    sign_in(browser, url, "sso")
    follow(browser, browser.find_element(By.ID, "berth-my-tokens"))
    assert "No tokens yet." in browser.find_element(By.ID, "berth-tokens").text

    browser.find_element(By.ID, "id_name").send_keys("laptop")
    Select(browser.find_element(By.ID, "id_project")).select_by_value("tok")
    for box in ("berth-perm-repository-pull", "berth-perm-repository-push"):
        browser.find_element(By.ID, box).click()
    click_and_wait(
        browser, browser.find_element(By.CSS_SELECTOR, "#berth-token-add input[type=submit]")
    )
    secret = browser.find_element(By.ID, "berth-token-value").text
    assert secret.startswith("berth_pat_")
    browser.find_element(By.CSS_SELECTOR, "#berth-token-secret button[data-copy]").click()
    assert read_clipboard(browser) == secret
    assert browser.find_element(By.ID, "berth-token-login").text == (
        f"docker login {server.addr} -u sso"
    )

    daemon = DockerDaemon().start(tmp_path / "daemon")
    try:
        ref = f"{server.addr}/tok/app:v1"
        image_id = build_scratch_image(daemon, ref, tmp_path / "build")
        daemon.login(server.addr, "sso", read_clipboard(browser))
        assert daemon.push(ref).startswith("sha256:")
        daemon.rmi(ref, force=True)
        assert daemon.pull(ref) == image_id

        # Revoke on the page (reloaded: the secret is gone from it).
        browser.get(f"{url}/tokens/")
        assert secret not in browser.page_source
        row = browser.find_element(By.XPATH, "//tr[th[normalize-space()='laptop']]")
        assert "Active" in row.text
        click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "button[value=revoke]"))
        row = browser.find_element(By.XPATH, "//tr[th[normalize-space()='laptop']]")
        assert "Revoked" in row.text

        daemon.rmi(ref, force=True)
        with pytest.raises(ClientError):
            daemon.pull(ref)
    finally:
        daemon.stop()
