"""Long work shows progress, in a real browser (Debian's Chromium through
Debian's chromedriver, the fixture of tests/test_browser.py): a sysadmin opens
a running garbage collection and the list of runs; the test moves the run
along in the live Berth's database (`manage.py shell`, the server's own
settings) and the pages follow — counts, the log's end, Running → Success —
without a reload, and stop asking once the run has ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ADMIN, BerthServer
from tests.test_browser import click_and_wait

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BerthServer]:
    berth = BerthServer(tmp_path_factory.mktemp("live-status") / "data")
    berth.start()
    try:
        yield berth
    finally:
        berth.stop()


def run_in_server(server: BerthServer, code: str) -> str:
    """Python in the live Berth's settings and database (not the test's)."""
    done = server.manage(
        "shell", "--no-imports", "-c", "from registry.models import SystemJob\n" + code
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def new_running_gc(server: BerthServer) -> int:
    return int(
        run_in_server(
            server,
            "job = SystemJob.objects.create(kind='gc', status='Running', log='marking\\n')\n"
            "print(job.pk)",
        )
    )


def text_of(driver: webdriver.Chrome, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def wait_for_text(driver: webdriver.Chrome, css: str, expected: str) -> None:
    """Bounded polling of the page (the page polls the server every 2 s)."""
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: expected in text_of(d, css),
        f"{css} never showed {expected!r}",
    )


def sign_in_as_sysadmin(driver: webdriver.Chrome, url: str) -> None:
    driver.get(f"{url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys(ADMIN[0])
    driver.find_element(By.NAME, "password").send_keys(ADMIN[1])
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))


def test_a_running_gc_page_follows_the_run_to_success_without_a_reload(server, browser):
    job = new_running_gc(server)
    sign_in_as_sysadmin(browser, server.url)
    browser.get(f"{server.url}/admin/registry/systemjob/{job}/change/")
    assert text_of(browser, "#berth-live [data-live-status]") == "Running"
    assert text_of(browser, ".field-status .readonly") == "Running"
    region = browser.find_element(By.CSS_SELECTOR, "#berth-live [aria-live=polite]")
    assert "Running" in region.text
    # A mark on this document: gone if the browser reloaded or navigated.
    browser.execute_script("window.__berthSamePage = true;")

    run_in_server(
        server,
        f"SystemJob.objects.filter(pk={job}).update("
        "deleted_blobs=3, freed_bytes=2048, log='marking\\nswept sha256:feed\\n')",
    )
    wait_for_text(browser, "#berth-live [data-live-progress]", "3 blobs")
    wait_for_text(browser, "#berth-live [data-live-log]", "swept sha256:feed")
    assert text_of(browser, ".field-deleted_blobs .readonly") == "3"
    assert (
        text_of(browser, ".field-freed .readonly") == "2.0 KB (2048 B)"
    )  # WebDriver reads the no-break space as a space

    run_in_server(
        server,
        "from django.utils import timezone\n"
        f"SystemJob.objects.filter(pk={job}).update(status='Success', finished_at=timezone.now())",
    )
    wait_for_text(browser, "#berth-live [data-live-status]", "Success")
    assert text_of(browser, ".field-status .readonly") == "Success"
    assert "Success" in region.text
    assert browser.execute_script("return window.__berthSamePage === true;")
    # Ended: the page stops asking.
    assert (
        browser.execute_script(
            "return document.getElementById('berth-live').hasAttribute('data-active');"
        )
        is False
    )


def test_the_list_of_runs_updates_a_running_row_and_announces_it(server, browser):
    job = new_running_gc(server)
    sign_in_as_sysadmin(browser, server.url)
    browser.get(f"{server.url}/admin/registry/systemjob/")
    marker = f'[data-live-id="{job}"]'
    row = browser.find_element(By.CSS_SELECTOR, marker).find_element(By.XPATH, "./ancestor::tr")
    assert row.find_element(By.CSS_SELECTOR, "td.field-status").text == "Running"
    browser.execute_script("window.__berthSamePage = true;")

    run_in_server(
        server,
        f"SystemJob.objects.filter(pk={job}).update(status='Success', deleted_blobs=5)",
    )
    WebDriverWait(browser, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: row.find_element(By.CSS_SELECTOR, "td.field-status").text == "Success",
        "the row never showed Success",
    )
    assert row.find_element(By.CSS_SELECTOR, "td.field-deleted_blobs").text == "5"
    assert "5 blobs" in browser.find_element(By.CSS_SELECTOR, marker).text
    # The live region announced it, once, for screen readers.
    wait_for_text(browser, "#berth-live[aria-live=polite]", f"{job}: Success")
    assert browser.execute_script("return window.__berthSamePage === true;")
    assert not browser.find_elements(By.CSS_SELECTOR, f"{marker}[data-live-active]")
