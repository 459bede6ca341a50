"""The one guarded HTTP client for every request Berth makes to another server
(DESIGN §2.8): replication endpoints, OpenID Providers, CAS servers, webhooks.

``session()`` gives a ``requests.Session`` (requests: what mozilla-django-oidc
and django-cas-ng already use) whose every connection is checked *after* DNS
resolution, and made to the address that was checked, so a name that resolves
elsewhere a moment later (DNS rebinding) cannot slip past:

- the address must be in ``BERTH_OUTBOUND_ALLOW`` (default: any) and not in
  ``BERTH_OUTBOUND_DENY`` (default: link-local — the cloud metadata service at
  169.254.169.254 —, multicast, unspecified and reserved addresses). Loopback and
  private networks are allowed by default: internal registries and identity
  providers live there. If any address a name resolves to is denied, the name is
  refused (``Refused``), whatever its other addresses;
- proxies from the environment are ignored (a proxy would connect on our behalf,
  unchecked);
- every request has a timeout (connect, read) unless the caller gives one;
- redirects: at most ``max_redirects``; with ``same_origin_redirects`` a
  redirect to another scheme, host or port is refused (``RedirectRefused``);
  otherwise requests drops the ``Authorization`` header when the host changes,
  and each hop's address is checked like the first;
- ``read_capped`` reads a body up to a limit (``TooLarge`` beyond it).

Secrets: urllib3 and requests log URLs, never headers; callers must not put
credentials in URLs (``session.auth`` or headers instead).
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from kit.net import Network, parse_trusted_proxies

__all__ = [
    "DEFAULT_DENY",
    "RedirectRefused",
    "Refused",
    "TooLarge",
    "ca_bundle",
    "check_address",
    "read_capped",
    "session",
]

DEFAULT_DENY = (
    "169.254.0.0/16",  # IPv4 link-local: cloud metadata services
    "fe80::/10",  # IPv6 link-local
    "224.0.0.0/4",  # multicast
    "ff00::/8",
    "0.0.0.0/8",  # "this network", unspecified
    "::/128",
    "240.0.0.0/4",  # reserved, and the broadcast address
)


class Refused(requests.ConnectionError):
    """The target's address is not one Berth may connect to (the outbound policy)."""


class RedirectRefused(requests.ConnectionError):
    """A redirect to another origin, where the caller allowed only its own."""


class TooLarge(Exception):
    """A response body over the caller's limit."""


def _networks(name: str, default: tuple[str, ...]) -> tuple[Network, ...]:
    values = getattr(settings, name, None)
    if values is None:
        values = default
    if values and isinstance(next(iter(values)), str):
        return parse_trusted_proxies(values)
    return tuple(values)


def check_address(address: str) -> None:
    """Raise ``Refused`` unless the policy lets Berth connect to ``address``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    allow = _networks("BERTH_OUTBOUND_ALLOW", ())
    deny = _networks("BERTH_OUTBOUND_DENY", DEFAULT_DENY)
    if any(ip in network for network in deny):
        raise Refused(f"outbound connection to {ip} refused: a denied network")
    if allow and not any(ip in network for network in allow):
        raise Refused(f"outbound connection to {ip} refused: not an allowed network")


class _Denied(NewConnectionError):
    def __init__(self, conn: Any, refused: Refused) -> None:
        super().__init__(conn, str(refused))
        self.refused = refused


class _GuardedMixin:
    """Resolve, check every address, then connect to a checked address."""

    host: str
    port: int
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            return super()._new_conn()  # type: ignore[misc]  # urllib3's own error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            try:
                check_address(address)
            except Refused as refused:
                raise _Denied(self, refused) from None
        name = self._dns_host
        last: Exception | None = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except NewConnectionError as exc:
                    last = exc
        finally:
            self._dns_host = name
        assert last is not None
        raise last


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().send(request, *args, **kwargs)
        except requests.ConnectionError as exc:
            refused = _refusal(exc)
            if refused is not None:
                raise Refused(str(refused), request=request) from None
            raise


def _refusal(exc: BaseException) -> Refused | None:
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, _Denied):
            return item.refused
        stack.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
        stack.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _GuardedSession(requests.Session):
    def __init__(
        self, *, timeout: tuple[float, float], same_origin_redirects: bool, purpose: str
    ) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.same_origin_redirects = same_origin_redirects
        self.purpose = purpose
        self.trust_env = False  # no proxies or .netrc from the environment
        adapter = _GuardedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = f"berth ({purpose})"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target and self.same_origin_redirects:
            absolute = requests.compat.urljoin(resp.url, target)
            if _origin(absolute) != _origin(resp.url):
                raise RedirectRefused(
                    f"redirect from {_origin(resp.url)[1]} to another origin refused",
                    response=resp,
                )
        return target


def session(
    *,
    purpose: str,
    verify: bool | str = True,
    timeout: tuple[float, float] = (5.0, 30.0),
    max_redirects: int = 3,
    same_origin_redirects: bool = True,
) -> requests.Session:
    """A guarded session; ``purpose`` ("replication", "oidc"…) names it in its
    User-Agent. ``verify``: True (the system's CAs), False, or a CA bundle's
    path (``ca_bundle`` makes one from a PEM string)."""
    guarded = _GuardedSession(
        timeout=timeout, same_origin_redirects=same_origin_redirects, purpose=purpose
    )
    guarded.verify = verify
    guarded.max_redirects = max_redirects
    return guarded


def ca_bundle(pem: str) -> str:
    """A file holding ``pem`` (a custom CA an endpoint's TLS is checked
    against), for ``verify=``; the same PEM gives the same file."""
    digest = hashlib.sha256(pem.encode()).hexdigest()
    directory = Path(tempfile.gettempdir()) / "berth-ca"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{digest}.pem"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        partial.write_text(pem)
        partial.replace(path)
    return str(path)


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The body of a response made with ``stream=True``, at most ``limit`` bytes."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise TooLarge(f"response of {declared} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            response.close()
            raise TooLarge(f"response is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
