"""The identity providers the SSO tests sign in through, each its own process
on a free loopback port, stopped with its context:

- ``OidcPeer``: npm's ``oidc-provider`` (tests/peers/oidc_provider.mjs, installed
  by tests/peers/build-oidc-provider.sh into ``.cache/oidc-provider``);
- ``CasPeer``: django-mama-cas in a Django project of its own
  (tests/peers/cas_server/), with its own database and cookie names.

``LoopbackBrowser`` is a ``requests`` session that plays the browser's part of
a redirect journey (the provider's forms, the redirects back) and refuses any
URL off the loopback: a journey that would leave the machine fails instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from tests.support import free_port, starting_a_server, wait_until

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "peers"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "testserver"})
OIDC_CACHE = Path(os.environ.get("BERTH_OIDC_PROVIDER_CACHE", REPO / ".cache" / "oidc-provider"))


def require_loopback(url: str) -> str:
    """``url`` if it names this machine; AssertionError otherwise."""
    host = urlsplit(url).hostname
    assert host in LOOPBACK, f"the journey leaves the machine: {url}"
    return url


class _Process:
    name = "peer"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self, argv: list[str], cwd: Path) -> None:
        starting_a_server(self.name)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._ready, timeout=60, what=lambda: self.log.read_text()[-3000:])

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
        try:
            requests.get(self.probe_url(), timeout=5)
        except requests.ConnectionError:
            return False
        return True

    def probe_url(self) -> str:
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class OidcPeer(_Process):
    """An OpenID Provider: ``clients`` as oidc-provider takes them, ``accounts``
    by login name with their claims (``groups`` a list)."""

    name = "oidc-provider"

    def __init__(
        self,
        directory: Path,
        *,
        clients: list[dict[str, Any]],
        accounts: dict[str, dict[str, Any]],
        id_token_ttl: int = 3600,
    ) -> None:
        super().__init__(directory)
        self.issuer = self.url
        self.settings = {
            "port": self.port,
            "issuer": self.issuer,
            "clients": clients,
            "accounts": accounts,
            "id_token_ttl": id_token_ttl,
        }

    def probe_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OidcPeer:
        node = shutil.which("node")
        assert node, "node is missing: scripts/test-deps.sh installs it"
        assert (OIDC_CACHE / "node_modules" / "oidc-provider").is_dir(), (
            "oidc-provider is missing: run tests/peers/build-oidc-provider.sh"
        )
        config = self.dir / "settings.json"
        config.write_text(json.dumps(self.settings))
        self._start([node, str(PEERS / "oidc_provider.mjs"), str(config), str(OIDC_CACHE)], PEERS)
        return self

    def tokens(
        self,
        *,
        client_id: str,
        client_secret: str,
        login: str,
        redirect_uri: str,
        nonce: str | None = "n-0S6_WzA2Mj",
    ) -> dict[str, Any]:
        """A token response for ``login`` as a relying party would get it (the
        authorization code flow with PKCE, played without Berth): for tests
        that hand Berth tokens it did not ask for."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email groups",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if nonce is not None:
            query["nonce"] = nonce
        browser = LoopbackBrowser()
        page = browser.get(f"{self.issuer}/auth?{urlencode(query)}")
        back = browser.submit(page, {"login": login, "password": "any"}, stop_at=redirect_uri)
        code = parse_qs(urlsplit(stopped_at(back)).query)["code"][0]
        response = requests.post(
            f"{self.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, client_secret),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


class CasPeer(_Process):
    """A CAS server: ``users`` by name with ``password``, ``email``, ``name``
    and ``groups``; ``services`` the regular expressions of the service URLs it
    serves (and sends single-logout requests to)."""

    name = "cas-server"

    def __init__(
        self, directory: Path, *, services: list[str], users: dict[str, dict[str, Any]]
    ) -> None:
        super().__init__(directory)
        self.settings = {
            "port": self.port,
            "data_dir": str(self.dir),
            "services": services,
            "users": users,
        }
        self.server_url = f"{self.url}/cas/"

    def probe_url(self) -> str:
        return f"{self.url}/cas/login"

    def start(self) -> CasPeer:
        config = self.dir / "settings.json"
        config.write_text(json.dumps(self.settings))
        self._start([sys.executable, str(PEERS / "cas_server" / "run.py"), str(config)], PEERS)
        return self


@contextmanager
def running(peer: _Process) -> Iterator[Any]:
    try:
        yield peer.start()  # type: ignore[attr-defined]
    finally:
        peer.stop()


class _Forms(HTMLParser):
    """The forms of a page: (action, method, {field: value}) with their inputs'
    and buttons' default values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                (a.get("action", ""), a.get("method", "get").lower(), {}, a.get("id", ""))
            )
        elif (
            tag in ("input", "button")
            and self.forms
            and a.get("name")
            and a.get("type") not in ("checkbox", "radio")
        ):
            self.forms[-1][2][a["name"]] = a.get("value", "")


def forms(html: str) -> list[tuple[str, str, dict[str, str], str]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class LoopbackBrowser:
    """The browser's part of a redirect journey, on the loopback only: follows
    redirects one by one (each checked), fills forms by field name."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def get(self, url: str, *, follow: bool = True, stop_at: str = "") -> requests.Response:
        return self._follow(
            self.http.get(require_loopback(url), allow_redirects=False, timeout=30), follow, stop_at
        )

    def _follow(self, response: requests.Response, follow: bool, stop_at: str) -> requests.Response:
        hops = 0
        while follow and response.is_redirect and hops < 20:
            target = require_loopback(urljoin(response.url, response.headers["Location"]))
            if stop_at and target.startswith(stop_at):
                response.headers["X-Stopped-At"] = target
                return response
            response = self.http.get(target, allow_redirects=False, timeout=30)
            hops += 1
        return response

    def submit(
        self, page: requests.Response, fields: dict[str, str], *, index: int = 0, stop_at: str = ""
    ) -> requests.Response:
        action, method, defaults, _ = forms(page.text)[index]
        url = require_loopback(urljoin(page.url, action or page.url))
        data = {**defaults, **fields}
        if method == "post":
            response = self.http.post(url, data=data, allow_redirects=False, timeout=30)
        else:
            response = self.http.get(url, params=data, allow_redirects=False, timeout=30)
        return self._follow(response, True, stop_at)


def stopped_at(response: requests.Response) -> str:
    """The redirect target a journey stopped before (``stop_at``)."""
    return response.headers.get("X-Stopped-At", "")


CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
