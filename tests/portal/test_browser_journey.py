"""The portal in a real browser (Debian's Chromium through Debian's chromedriver,
the fixture of tests/test_browser.py) against a live Berth: a developer signs in
at /, finds `team-a/app` by searching `app`, opens it, sees its tag, copies the
pull command (read back from the clipboard) and pulls with it using skopeo; a
guest sees the tag but no delete; the page switches to 中文. A project admin adds
a member and creates a robot, downloads its Kubernetes Secret and pulls with its
`.dockerconfigjson` through `skopeo --authfile`; a limited guest gets no members
tab. A user creates a project in the portal and adds a developer, who pushes
with docker: the tag appears, with its layers and build history; the developer
adds a tag, copies the pull command and pulls with docker; the project admin
deletes the added tag. Screenshots of each page are saved in the test's
temporary directory (the path is printed)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.clients.docker import DockerDaemon, build_scratch_image
from tests.clients.oci_layout import write_oci_layout
from tests.clients.skopeo import Skopeo
from tests.conftest import BerthServer
from tests.test_browser import PNG_MAGIC, click_and_wait

pytestmark = pytest.mark.clients

PASSWORD = "Journey123"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BerthServer]:
    """A live Berth with the private project `team-a`: `dev` is a developer and
    pushed `team-a/app:v1` with skopeo; `viewer` is a guest; `owner` is its
    project admin; `limited` is a user of no project yet; `builder` and
    `pusher` belong to no project."""
    root = tmp_path_factory.mktemp("journey")
    berth = BerthServer(root / "data")
    berth.start()
    try:
        api = f"{berth.url}/api/v2.0"
        for name in ("dev", "viewer", "owner", "limited", "builder", "pusher"):
            r = berth.http.post(
                f"{api}/users",
                json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"},
            )
            assert r.status_code == 201, r.text
        assert (
            berth.http.post(f"{api}/projects", json={"project_name": "team-a"}).status_code == 201
        )
        for name, role_id in (("dev", 2), ("viewer", 3), ("owner", 1)):
            r = berth.http.post(
                f"{api}/projects/team-a/members",
                json={"role_id": role_id, "member_user": {"username": name}},
            )
            assert r.status_code == 201, r.text
        layout = write_oci_layout(
            root / "image", tag="v1", platforms=["linux/amd64"], as_index=False
        )
        skopeo = Skopeo(root / "skopeo")
        try:
            skopeo.copy(
                layout.ref,
                f"docker://{berth.addr}/team-a/app:v1",
                dest_creds=f"dev:{PASSWORD}",
                preserve_digests=True,
            )
        finally:
            skopeo.stop()
        yield berth
    finally:
        berth.stop()


def follow(driver: webdriver.Chrome, link: WebElement) -> None:
    """Click a link, only if it stays on this machine: the portal must never send
    the browser elsewhere (and the test never leaves the loopback)."""
    href = link.get_attribute("href") or ""
    assert urlsplit(href).hostname in LOOPBACK, f"link leaves the machine: {href}"
    click_and_wait(driver, link)


def shoot(driver: webdriver.Chrome, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.read_bytes().startswith(PNG_MAGIC)


def sign_in(driver: webdriver.Chrome, url: str, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert driver.current_url == f"{url}/"


def read_clipboard(driver: webdriver.Chrome) -> str:
    """The clipboard's text, read by the page (permission granted through the
    DevTools protocol: headless Chromium has a clipboard of its own)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (e) => done('error: ' + e));"
    )


def test_developer_finds_copies_and_pulls_and_a_guest_only_looks(server, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots: {shots}")
    url = server.url
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # Sign in at / and land on the dashboard: my projects.
    sign_in(browser, url, "dev")
    projects = browser.find_element(By.ID, "berth-my-projects").text
    assert "team-a" in projects
    shoot(browser, shots, "dashboard")

    # Search any part of the name.
    browser.find_element(By.ID, "berth-search-q").send_keys("app")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#berth-search button"))
    found = browser.find_element(By.ID, "berth-found-repositories")
    shoot(browser, shots, "search")
    follow(browser, found.find_element(By.LINK_TEXT, "team-a/app"))

    # The repository's artifacts, with their tags.
    tags = browser.find_element(By.CSS_SELECTOR, "td.field-tag_names").text
    assert tags == "v1"
    shoot(browser, shots, "artifacts")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "th.field-digest a"))

    # The artifact: copy the pull command and read it back from the clipboard.
    button = browser.find_element(By.CSS_SELECTOR, "#berth-pull-commands button[data-copy]")
    expected = f"docker pull {server.addr}/team-a/app:v1"
    assert button.get_attribute("data-copy") == expected
    button.click()
    assert read_clipboard(browser) == expected
    assert button.text == "Copied"
    shoot(browser, shots, "artifact")

    # Pull with exactly what was copied (skopeo: the reference after `docker pull`).
    reference = read_clipboard(browser).removeprefix("docker pull ")
    skopeo = Skopeo(tmp_path_factory.mktemp("pull"))
    try:
        out = tmp_path_factory.mktemp("pulled")
        digest = skopeo.copy(f"docker://{reference}", f"oci:{out}:v1", src_creds=f"dev:{PASSWORD}")
    finally:
        skopeo.stop()
    assert digest.startswith("sha256:")
    assert digest in browser.page_source

    # A guest sees the tag, and no way to delete it.
    sign_in(browser, url, "viewer")
    browser.get(f"{url}/admin/registry/tag/")
    follow(browser, browser.find_element(By.LINK_TEXT, "v1"))
    assert "team-a/app" in browser.find_element(By.ID, "content-main").text
    assert not browser.find_elements(By.CSS_SELECTOR, "a.deletelink")
    shoot(browser, shots, "guest-tag")

    # Switch to 中文: the same page, translated (Berth's strings and Django's).
    browser.get(f"{url}/")
    Select(browser.find_element(By.ID, "berth-language-select")).select_by_value("zh-hans")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#berth-language button"))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-hans"
    assert "我的项目" in browser.find_element(By.ID, "berth-my-projects").text
    assert "注销" in browser.find_element(By.ID, "user-tools").text
    shoot(browser, shots, "dashboard-zh-hans")


def downloaded(folder: Path, name: str) -> Path:
    """The file the browser saved, polled for a bounded number of times."""
    path = folder / name
    for _ in range(200):
        if path.exists() and path.stat().st_size:
            return path
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded: {sorted(folder.iterdir())}")


def test_a_project_admin_adds_a_member_and_a_robot_whose_secret_pulls(
    server, browser, tmp_path_factory
):
    shots = tmp_path_factory.mktemp("screenshots")
    downloads = tmp_path_factory.mktemp("downloads")
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    url = server.url

    # From the dashboard to the project's tabs; add `limited` as a limited guest.
    sign_in(browser, url, "owner")
    follow(
        browser,
        browser.find_element(By.ID, "berth-my-projects").find_element(By.LINK_TEXT, "team-a"),
    )
    shoot(browser, shots, "project-summary")
    follow(browser, browser.find_element(By.ID, "berth-tab-members"))
    form = browser.find_element(By.ID, "berth-member-add")
    form.find_element(By.NAME, "username").send_keys("limited")
    Select(form.find_element(By.NAME, "role")).select_by_value("5")
    click_and_wait(browser, form.find_element(By.NAME, "_save"))
    assert "limited" in browser.find_element(By.ID, "berth-members").text
    shoot(browser, shots, "project-members")

    # A robot that may pull; its Secret downloaded for namespace `apps`.
    follow(browser, browser.find_element(By.ID, "berth-tab-robots"))
    form = browser.find_element(By.ID, "berth-robot-add")
    form.find_element(By.NAME, "name").send_keys("puller")
    for value in ("repository-pull", "artifact-read"):
        form.find_element(By.ID, f"berth-perm-{value}").click()
    namespace = form.find_element(By.NAME, "namespace")
    namespace.clear()
    namespace.send_keys("apps")
    click_and_wait(browser, form.find_element(By.NAME, "_save"))
    shown = browser.find_element(By.ID, "berth-robot-secret")
    assert "kubectl apply -f robot-team-a-puller.yaml" in shown.text
    shoot(browser, shots, "project-robot-secret")
    browser.find_element(By.ID, "berth-pull-secret").click()
    secret = yaml.safe_load(downloaded(downloads, "robot-team-a-puller.yaml").read_text())
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["namespace"] == "apps"

    # The Secret's .dockerconfigjson is an auth file skopeo pulls with.
    authfile = downloads / "config.json"
    authfile.write_bytes(base64.b64decode(secret["data"][".dockerconfigjson"]))
    skopeo = Skopeo(tmp_path_factory.mktemp("robot-pull"))
    try:
        out = tmp_path_factory.mktemp("robot-pulled")
        digest = skopeo.copy(
            f"docker://{server.addr}/team-a/app:v1",
            f"oci:{out}:v1",
            extra=["--authfile", str(authfile)],
        )
    finally:
        skopeo.stop()
    assert digest.startswith("sha256:")

    # A limited guest sees the project, not its members.
    sign_in(browser, url, "limited")
    follow(
        browser,
        browser.find_element(By.ID, "berth-my-projects").find_element(By.LINK_TEXT, "team-a"),
    )
    assert not browser.find_elements(By.ID, "berth-tab-members")
    shoot(browser, shots, "project-limited-guest")
    browser.get(browser.current_url + "members/")
    assert "403" in browser.title or "Forbidden" in browser.page_source


def test_a_project_made_in_the_portal_gets_a_docker_push_and_its_tags_change(
    server, browser, tmp_path_factory
):
    shots = tmp_path_factory.mktemp("screenshots")
    url = server.url
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # `builder` creates the project `built` in the portal and becomes its admin.
    sign_in(browser, url, "builder")
    browser.get(f"{url}/admin/accounts/project/add/")
    browser.find_element(By.NAME, "name").send_keys("built")
    shoot(browser, shots, "project-add")
    click_and_wait(browser, browser.find_element(By.NAME, "_save"))
    assert "was added successfully" in browser.page_source
    browser.get(f"{url}/")
    follow(
        browser,
        browser.find_element(By.ID, "berth-my-projects").find_element(By.LINK_TEXT, "built"),
    )
    # ... and adds `pusher` as a developer from the members tab.
    follow(browser, browser.find_element(By.ID, "berth-tab-members"))
    form = browser.find_element(By.ID, "berth-member-add")
    form.find_element(By.NAME, "username").send_keys("pusher")
    Select(form.find_element(By.NAME, "role")).select_by_value("2")
    click_and_wait(browser, form.find_element(By.NAME, "_save"))
    assert "pusher" in browser.find_element(By.ID, "berth-members").text

    work = tmp_path_factory.mktemp("docker")
    daemon = DockerDaemon().start(work / "daemon")
    try:
        ref = f"{server.addr}/built/app:1.0"
        daemon.login(server.addr, "pusher", PASSWORD)
        image_id = build_scratch_image(daemon, ref, work / "build", layers=2, layer_size=4096)
        digest = daemon.push(ref)

        # The developer finds the tag in the project's repositories.
        sign_in(browser, url, "pusher")
        follow(
            browser,
            browser.find_element(By.ID, "berth-my-projects").find_element(By.LINK_TEXT, "built"),
        )
        follow(browser, browser.find_element(By.ID, "berth-tab-repositories"))
        follow(browser, browser.find_element(By.LINK_TEXT, "built/app"))
        assert browser.find_element(By.CSS_SELECTOR, "td.field-tag_names").text == "1.0"
        follow(browser, browser.find_element(By.CSS_SELECTOR, "th.field-digest a"))
        assert digest in browser.page_source
        artifact_page = browser.current_url
        layers = browser.find_element(By.ID, "berth-layers").text
        manifest = server.http.get(
            f"{url}/v2/built/app/manifests/1.0",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        ).json()
        assert len(manifest["layers"]) == 2  # the two COPY layers
        for blob in (manifest["config"], *manifest["layers"]):
            assert blob["digest"] in layers
        history = browser.find_element(By.ID, "berth-history").text
        assert "COPY" in history
        shoot(browser, shots, "pushed-artifact")

        # Adds a tag from the page (tag:create, the API's service).
        browser.find_element(By.ID, "berth-tag-name").send_keys("stable")
        click_and_wait(
            browser, browser.find_element(By.CSS_SELECTOR, "#berth-add-tag input[type=submit]")
        )
        assert "stable" in browser.find_element(By.ID, "berth-artifact-tags").text
        assert not browser.find_elements(By.CSS_SELECTOR, "#berth-artifact-tags a.deletelink")

        # Copies the pull command of `stable` and pulls it with docker.
        button = browser.find_element(
            By.CSS_SELECTOR, '#berth-pull-commands button[data-copy$="/built/app:stable"]'
        )
        button.click()
        copied = read_clipboard(browser)
        assert copied == f"docker pull {server.addr}/built/app:stable"
        daemon.rmi(ref)
        assert daemon.pull(copied.removeprefix("docker pull ")) == image_id

        # The project admin deletes the tag `stable` (a confirmation first).
        sign_in(browser, url, "builder")
        browser.get(artifact_page)
        follow(browser, browser.find_element(By.LINK_TEXT, "Delete tag stable"))
        shoot(browser, shots, "tag-delete-confirm")
        click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
        assert "was deleted successfully" in browser.page_source
        r = server.http.get(
            f"{url}/api/v2.0/projects/built/repositories/app/artifacts/{digest}/tags"
        )
        assert [t["name"] for t in r.json()] == ["1.0"]
    finally:
        daemon.stop()
