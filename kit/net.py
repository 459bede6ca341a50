"""The client's address, also behind a reverse proxy.

Behind nginx or a load balancer every request reaches Berth from the proxy's
address. The client's own address is then in ``X-Forwarded-For``, which each
proxy appends to — but anyone can send that header, so Berth believes only the
part its own proxies wrote: the operator names them (``BERTH_TRUSTED_PROXIES``),
and the header is read from the right, past the trusted hops, up to the first
address that is not one of them. With no trusted proxies (the default) the
header is ignored.

The address is what the audit log records and what the login throttle counts
failures by (accounts.services.auth): behind a proxy without this, one client's
guessing would throttle a user for everyone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks; ValueError naming a bad entry."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Any, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def client_ip(meta: Mapping[str, Any], proxies: tuple[Network, ...] | None = None) -> str:
    """The address of the client that sent this request (``request.META``)."""
    if proxies is None:
        proxies = settings.BERTH_TRUSTED_PROXIES
    peer = meta.get("REMOTE_ADDR", "")
    if not proxies:
        return peer
    hop = _address(peer)
    if hop is None or not _trusted(hop, proxies):
        return peer
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",") if forwarded else []):
        address = _address(entry)
        if address is None:  # not written by a proxy of ours: stop at the last sure hop
            break
        hop = address
        if not _trusted(hop, proxies):
            break
    return str(hop)
