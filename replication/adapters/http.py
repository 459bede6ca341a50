"""The HTTP side of every adapter: one ``requests`` session per endpoint, the
registry's authentication (Basic, or a Bearer token from the realm its
``WWW-Authenticate`` names, cached per scope), retries with back-off on
network errors, 5xx and 429.

Only requests whose body can be sent again are retried (no body, or bytes
held in memory): the copy engine sends blobs in chunks it holds, so a chunk
refused with 401 (a token expired mid-copy) or lost on the wire is sent again,
and a consumed stream is never replayed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from kit import outbound

log = logging.getLogger("berth.replication")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Unreachable(Exception):
    """The endpoint did not answer after the retries (network or 5xx/429)."""


class Denied(Exception):
    """The endpoint refused the credentials (401/403)."""


@dataclass
class Auth:
    username: str = ""
    password: str = ""
    bearer: str = ""  # a token to send as is ("oauth" credentials)


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _CHALLENGE.findall(rest)}


def new_session(*, verify: bool | str, timeout: tuple[float, float]) -> requests.Session:
    """The guarded outbound client (kit/outbound.py: target networks checked
    after DNS resolution, redirects kept to the same origin, timeouts)."""
    return outbound.session(purpose="replication", verify=verify, timeout=timeout)


class Client:
    """Requests to one registry, authenticated and retried."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth,
        verify: bool | str = True,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: tuple[float, float] = (5.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.session = new_session(verify=verify, timeout=timeout)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    # -- authentication -------------------------------------------------------

    def _basic(self) -> tuple[str, str] | None:
        return (self.auth.username, self.auth.password) if self.auth.username else None

    def _token(self, scope: str, *, fresh: bool = False) -> str | None:
        """The Bearer token for ``scope`` (from the cache unless ``fresh``)."""
        if self.auth.bearer:
            return self.auth.bearer
        if self._challenge is None or self._challenge[0] != "bearer":
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(scope)
            if cached and not fresh and cached[1] > now:
                return cached[0]
        params = self._challenge[1]
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        r = self.send(
            "GET", params["realm"], headers={}, data=None, params=query, auth=self._basic()
        )
        if r.status_code in (401, 403):
            raise Denied(f"the token service refused the credentials ({r.status_code})")
        if r.status_code != 200:
            raise Unreachable(f"the token service answered {r.status_code}")
        body = r.json()
        token = str(body.get("token") or body.get("access_token") or "")
        if not token:
            raise Denied("the token service returned no token")
        lifetime = float(body.get("expires_in") or 60)
        with self._lock:
            self._tokens[scope] = (token, now + max(lifetime - 10, 5))
        return token

    def _headers(self, scope: str, *, fresh: bool = False) -> tuple[dict[str, str], Any]:
        if self.auth.bearer:
            return {"Authorization": f"Bearer {self.auth.bearer}"}, None
        if self._challenge is None:
            return {}, self._basic()
        if self._challenge[0] == "bearer":
            token = self._token(scope, fresh=fresh)
            return ({"Authorization": f"Bearer {token}"} if token else {}), None
        return {}, self._basic()

    def discover(self) -> None:
        """Learn the registry's challenge (GET /v2/) once: requests made
        afterwards carry credentials from the start, before any body is sent."""
        if self._challenge is not None:
            return
        r = self.send("GET", self.base_url + "/v2/", headers={}, data=None)
        header = r.headers.get("WWW-Authenticate", "")
        if r.status_code == 401 and header:
            self._challenge = parse_challenge(header)
        else:
            self._challenge = ("none", {})

    # -- requests ---------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None,
        params: Mapping[str, str] | None = None,
        auth: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        """One request, retried with back-off on network errors and 5xx/429."""
        delay = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = self.session.request(
                    method,
                    url,
                    headers=dict(headers),
                    data=data,
                    params=params,
                    auth=auth,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if r.status_code not in RETRY_STATUSES:
                    return r
                last = f"HTTP {r.status_code}"
                retry_after = r.headers.get("Retry-After", "")
                r.close()
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), 60.0))
            if attempt < self.retries:
                log.info("%s %s: %s; again in %.1fs", method, _safe(url), last, delay)
                self.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise Unreachable(f"{method} {_safe(url)}: {last} after {self.retries + 1} attempts")

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str = "",
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """An authenticated request to ``path`` (relative to the base URL, or
        absolute: an upload's Location). A 401 fetches a fresh token and sends
        again once (the body is bytes, so it can be)."""
        self.discover()
        url = path if path.startswith(("http://", "https://")) else self.base_url + path

        def attempt(fresh: bool) -> requests.Response:
            auth_headers, basic = self._headers(scope, fresh=fresh)
            return self.send(
                method,
                url,
                headers={**(headers or {}), **auth_headers},
                data=data,
                params=params,
                auth=basic,
                stream=stream,
            )

        r = attempt(fresh=False)
        if r.status_code == 401 and self._challenge and self._challenge[0] == "bearer":
            r.close()
            r = attempt(fresh=True)
        return r


def _safe(url: str) -> str:
    """A URL for logs: without its query (upload state, tokens)."""
    return url.split("?", 1)[0]
