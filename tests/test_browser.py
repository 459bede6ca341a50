"""A real browser (Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver) uses the admin of a live Berth: a project admin adds a member, and
the portal journeys are in tests/portal/test_browser_journey.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import BerthServer

pytestmark = pytest.mark.clients

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "Browser123"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BerthServer]:
    """A live Berth with project `web`: `webadmin` administers it, `webguest` is a
    guest, `newcomer` is not a member yet."""
    data = tmp_path_factory.mktemp("browser") / "data"
    # `serve` collects the admin's CSS and JavaScript and granian serves them.
    berth = BerthServer(data)
    berth.start()
    try:
        api = f"{berth.url}/api/v2.0"
        for name in ("webadmin", "webguest", "newcomer"):
            r = berth.http.post(
                f"{api}/users",
                json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"},
            )
            assert r.status_code == 201, r.text
        assert berth.http.post(f"{api}/projects", json={"project_name": "web"}).status_code == 201
        for name, role_id in (("webadmin", 1), ("webguest", 3)):
            r = berth.http.post(
                f"{api}/projects/web/members",
                json={"role_id": role_id, "member_user": {"username": name}},
            )
            assert r.status_code == 201, r.text
        yield berth
    finally:
        berth.stop()


@pytest.fixture
def browser(tmp_path, monkeypatch) -> Iterator[webdriver.Chrome]:
    # Debian's browser and driver, named explicitly: Selenium Manager never runs
    # (and could not download anything here).
    for tool in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(tool), f"{tool} missing: run scripts/test-deps.sh"
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def click_and_wait(driver: webdriver.Chrome, button: WebElement) -> None:
    """Click and wait until the next page has replaced this one and loaded.

    A mark set on this page's window is gone once the browser has navigated
    (a new document has a new window object). Chromium may answer a probe made
    mid-navigation with a generic error instead of a stale-element one
    ("Node with given id does not belong to the document"): such a probe just
    counts as "not yet"."""
    driver.execute_script("window.__berthPreviousPage = true;")
    button.click()

    def replaced(d: webdriver.Chrome) -> bool:
        return bool(
            d.execute_script(
                "return window.__berthPreviousPage === undefined"
                " && document.readyState === 'complete';"
            )
        )

    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(replaced)


def log_in(driver: webdriver.Chrome, url: str, username: str) -> None:
    driver.get(f"{url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))


def members_of(server: BerthServer, project: str) -> dict[str, int]:
    r = server.http.get(f"{server.url}/api/v2.0/projects/{project}/members")
    assert r.status_code == 200, r.text
    return {m["entity_name"]: m["role_id"] for m in r.json()}


def test_project_admin_adds_a_member_in_the_browser(server, browser, tmp_path):
    log_in(browser, server.url, "webadmin")
    assert browser.current_url == f"{server.url}/admin/"
    assert "welcome, webadmin" in browser.find_element(By.ID, "user-tools").text.lower()
    # Styled: the admin's stylesheet loaded and applied.
    header = browser.find_element(By.ID, "header")
    assert header.value_of_css_property("display") == "flex"
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, "Members"))
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, ".object-tools a.addlink"))
    Select(browser.find_element(By.NAME, "project")).select_by_visible_text("web")
    browser.find_element(By.NAME, "username").send_keys("newcomer")
    Select(browser.find_element(By.NAME, "role")).select_by_visible_text("developer")
    click_and_wait(browser, browser.find_element(By.NAME, "_save"))
    assert browser.current_url == f"{server.url}/admin/accounts/member/"
    assert "was added successfully" in browser.page_source
    assert members_of(server, "web")["newcomer"] == 2
    shot = tmp_path / "members.png"
    assert browser.save_screenshot(str(shot))
    data = Path(shot).read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5000


def test_swagger_ui_loads_with_no_request_leaving_berth(server, browser):
    """Swagger UI at Harbor's /devcenter-api-2.0 renders Berth's OpenAPI document
    from files Berth serves: every request the page made went to Berth."""
    browser.get(f"{server.url}/devcenter-api-2.0")
    # Tags start collapsed (SWAGGER_UI_SETTINGS): open the projects' and see its
    # operations.
    tag = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '.swagger-ui .opblock-tag[data-tag="projects"]')
    )[0]
    assert "Berth API" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    tag.click()
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, '.swagger-ui .opblock-summary-path[data-path="/api/v2.0/projects"]'
        )
    )
    requested = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    assert any(r.endswith("/api/v2.0/openapi.json") for r in requested), requested
    assert any(r.endswith("swagger-ui-bundle.js") for r in requested), requested
    assert [r for r in requested if not r.startswith(f"{server.url}/")] == []
