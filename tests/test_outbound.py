"""kit/outbound.py: the guarded outbound client, against a small HTTP server
in this process on loopback (no Berth started), and kit/sealed.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.test import override_settings

from kit import outbound, sealed
from kit.net import parse_trusted_proxies


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **dict(self.headers)})
        if self.path == "/big":
            body = b"x" * 100_000
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/to/") - 1 :].replace("/http", "http", 1))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_loopback_allowed_by_default(server: str) -> None:
    response = outbound.session(purpose="test").get(server + "/")
    assert response.status_code == 200
    assert response.content == b"hello"
    assert _Handler.seen[0]["User-Agent"] == "berth (test)"


def test_denied_network_refused_before_connecting(server: str) -> None:
    deny = parse_trusted_proxies(["127.0.0.0/8"])
    with (
        override_settings(BERTH_OUTBOUND_DENY=deny),
        pytest.raises(outbound.Refused, match=r"127\.0\.0\.1 refused"),
    ):
        outbound.session(purpose="test").get(server + "/")
    assert _Handler.seen == []


def test_name_resolving_to_a_denied_address_is_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    deny = parse_trusted_proxies(["127.0.0.0/8", "::1"])
    with override_settings(BERTH_OUTBOUND_DENY=deny), pytest.raises(outbound.Refused):
        outbound.session(purpose="test").get(f"http://localhost:{port}/")
    assert _Handler.seen == []


def test_allow_list_limits_targets(server: str) -> None:
    allow = parse_trusted_proxies(["10.0.0.0/8"])
    with (
        override_settings(BERTH_OUTBOUND_ALLOW=allow),
        pytest.raises(outbound.Refused, match="not an allowed network"),
    ):
        outbound.session(purpose="test").get(server + "/")
    with override_settings(BERTH_OUTBOUND_ALLOW=parse_trusted_proxies(["127.0.0.1"])):
        assert outbound.session(purpose="test").get(server + "/").status_code == 200


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1"])
def test_default_deny(address: str) -> None:
    with pytest.raises(outbound.Refused):
        outbound.check_address(address)


def test_metadata_address_refused_without_a_connection() -> None:
    with pytest.raises(outbound.Refused):
        outbound.session(purpose="test", timeout=(2, 2)).get("http://169.254.169.254/latest/")


def test_cross_origin_redirect_refused_and_same_origin_followed(server: str) -> None:
    client = outbound.session(purpose="test")
    other = server.replace("127.0.0.1", "localhost")
    with pytest.raises(outbound.RedirectRefused):
        client.get(f"{server}/to/{other}/", auth=("user", "secret"))
    assert len(_Handler.seen) == 1
    assert client.get(f"{server}/to/{server}/").content == b"hello"


def test_cross_origin_redirect_drops_credentials_when_allowed(server: str) -> None:
    client = outbound.session(purpose="test", same_origin_redirects=False)
    other = server.replace("127.0.0.1", "localhost")
    response = client.get(f"{server}/to/{other}/", auth=("user", "secret"))
    assert response.content == b"hello"
    assert "Authorization" in _Handler.seen[0]
    assert "Authorization" not in _Handler.seen[1]


def test_redirect_hops_limited(server: str) -> None:
    client = outbound.session(purpose="test", max_redirects=1)
    hop = f"{server}/to/{server}/to/{server}/"
    with pytest.raises(requests.TooManyRedirects):
        client.get(hop)


def test_read_capped(server: str) -> None:
    client = outbound.session(purpose="test")
    assert outbound.read_capped(client.get(server + "/", stream=True), 10) == b"hello"
    with pytest.raises(outbound.TooLarge):
        outbound.read_capped(client.get(server + "/big", stream=True), 1000)


def test_default_timeout_applied(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    original = requests.adapters.HTTPAdapter.send

    def spy(self: object, request: object, *args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("timeout"))
        return original(self, request, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    outbound.session(purpose="test", timeout=(1.5, 7.0)).get(server + "/")
    assert seen == [(1.5, 7.0)]


def test_environment_proxies_ignored(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert outbound.session(purpose="test").get(server + "/").content == b"hello"


def test_ca_bundle_is_stable() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    first = outbound.ca_bundle(pem)
    assert first == outbound.ca_bundle(pem)
    with open(first) as handle:
        assert handle.read() == pem


def test_sealed_round_trip_and_never_plain() -> None:
    token = sealed.seal("bind-password")
    assert "bind-password" not in token
    assert sealed.is_sealed(token)
    assert sealed.unseal(token) == "bind-password"
    assert sealed.seal("bind-password") != token  # a fresh IV each time


def test_sealed_refuses_foreign_and_tampered_values() -> None:
    with pytest.raises(sealed.SealedError):
        sealed.unseal("plaintext")
    token = sealed.seal("s")
    with pytest.raises(sealed.SealedError):
        sealed.unseal(token[:-4] + "AAAA")
    other = "another-installation-key-" + "x" * 30
    with override_settings(SECRET_KEY=other), pytest.raises(sealed.SealedError):
        sealed.unseal(token)


def test_sealed_key_rotation() -> None:
    old_key = "old-key-" + "o" * 40
    with override_settings(SECRET_KEY=old_key):
        token = sealed.seal("endpoint-secret")
    with override_settings(SECRET_KEY="new-key-" + "n" * 40, SECRET_KEY_FALLBACKS=[old_key]):
        assert sealed.unseal(token) == "endpoint-secret"
        rotated = sealed.reseal(token)
    with override_settings(SECRET_KEY="new-key-" + "n" * 40):
        assert sealed.unseal(rotated) == "endpoint-secret"
        with pytest.raises(sealed.SealedError):
            sealed.unseal(token)
