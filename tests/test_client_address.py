"""The client's address behind trusted proxies (kit/net.py): what the audit
log records and what the login throttle counts by. The real-nginx case is in
tests/test_nginx_front.py."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.services import flush
from kit.net import client_ip, parse_trusted_proxies
from tests.conftest import ADMIN, basic, refused_at_start

PROXIES = parse_trusted_proxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No header, or a peer that is not a trusted proxy: the peer itself.
        ("10.1.1.1", None, "10.1.1.1"),
        ("192.0.2.7", "203.0.113.9", "192.0.2.7"),
        # One trusted proxy: the address it appended.
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        # The client sent its own header: the proxy's entry (rightmost) wins.
        ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        # Two proxies of ours in a row: past both.
        ("127.0.0.1", "203.0.113.9, 10.2.2.2", "203.0.113.9"),
        ("127.0.0.1", "6.6.6.6,203.0.113.9 ,10.2.2.2", "203.0.113.9"),
        # Every hop trusted: the farthest one.
        ("127.0.0.1", "10.3.3.3, 10.2.2.2", "10.3.3.3"),
        # Garbage where a proxy of ours should have written: the last sure hop.
        ("127.0.0.1", "203.0.113.9, not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.9, 10.2.2.2, 1.2.3.4:80", "127.0.0.1"),
        ("127.0.0.1", "garbage, 203.0.113.9, 10.2.2.2", "203.0.113.9"),
        ("127.0.0.1", "", "127.0.0.1"),
        # IPv6, and IPv4 written as IPv6 by a dual-stack server.
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer, forwarded, expected):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_ip(meta, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored():
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert client_ip(meta, ()) == "127.0.0.1"


def test_trusted_proxies_parse_addresses_and_networks():
    assert [str(n) for n in parse_trusted_proxies([" 127.0.0.1", "10.0.0.0/8", "", "::1"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="'nginx'"):
        parse_trusted_proxies(["127.0.0.1", "nginx"])


def test_a_malformed_trusted_proxy_is_refused_at_start(tmp_path):
    stderr = refused_at_start(tmp_path, BERTH_TRUSTED_PROXIES="127.0.0.1,10.0.0.0/33")
    assert "BERTH_TRUSTED_PROXIES: not an IP address or network: '10.0.0.0/33'" in stderr


def _token(client: Client) -> int:
    return client.get("/service/token?service=harbor-registry").status_code


def test_behind_a_trusted_proxy_guessing_is_throttled_per_client(team, settings):
    settings.BERTH_TRUSTED_PROXIES = parse_trusted_proxies(["127.0.0.1"])
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 3
    via_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    attacker = Client(
        HTTP_AUTHORIZATION=basic("admin", "Guess1234"),
        HTTP_X_FORWARDED_FOR="203.0.113.66",
        **via_proxy,
    )
    assert [_token(attacker) for _ in range(5)] == [401, 401, 401, 429, 429]
    # The owner comes through the same proxy from elsewhere: not throttled.
    owner = Client(
        HTTP_AUTHORIZATION=basic(*ADMIN), HTTP_X_FORWARDED_FOR="198.51.100.1", **via_proxy
    )
    assert _token(owner) == 200
    # Forging another address in front of the proxy's entry changes nothing.
    forged = Client(
        HTTP_AUTHORIZATION=basic("admin", "Guess1234"),
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.66",
        **via_proxy,
    )
    assert _token(forged) == 429
    flush()
    failures = AuditEvent.objects.filter(operation="login", result="failure")
    assert set(failures.values_list("client_ip", flat=True)) == {"203.0.113.66"}


def test_an_untrusted_peer_cannot_choose_its_address(team, settings):
    settings.BERTH_TRUSTED_PROXIES = parse_trusted_proxies(["127.0.0.1"])
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 3
    attacker = Client(HTTP_AUTHORIZATION=basic("admin", "Guess1234"), REMOTE_ADDR="192.0.2.66")
    for n in range(5):  # a new address each time would dodge the throttle
        attacker.defaults["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{n}"
        _token(attacker)
    assert _token(attacker) == 429
    flush()
    failures = AuditEvent.objects.filter(operation="login", result="failure")
    assert set(failures.values_list("client_ip", flat=True)) == {"192.0.2.66"}
