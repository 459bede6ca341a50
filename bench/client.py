"""A small OCI distribution client for the benchmarks (stdlib only).

It speaks the standard registry auth flows generically, so the same harness
runs against registries with and without authentication:

* a request answered ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…``
  makes the client fetch a token from the realm (``GET realm?service=…&scope=…``,
  with HTTP Basic credentials if it has any), cache it per scope until it
  expires, and retry with ``Authorization: Bearer``; later requests for the same
  scope carry the cached token from the start;
* a ``401`` with a ``Basic`` challenge makes it send Basic credentials on every
  request from then on (Pulp with token auth off works that way).

One keep-alive connection per thread. Bodies are bytes or a callable returning a
fresh file-like object or iterable of chunks (so a body can be re-sent after a
401). Redirects of GET/HEAD are followed (Pulp sends blob pulls to its content
app); Authorization is only sent to the registry's own host and port.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

BLOCK = 1024 * 1024

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_ACCEPT = ", ".join(
    [
        MT_OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

_NAME_RE = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/")
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')

Body = bytes | Callable[[], BinaryIO | Iterable[bytes]] | None


class RegistryError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {url} -> {status}: {body[:500]!r}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    nbytes: int = 0
    sha256: str | None = None
    seconds: float = 0.0
    links: list[str] = field(default_factory=list)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def scope_for(method: str, path: str) -> str | None:
    """The token scope a request needs (used when the challenge names none)."""
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    m = _NAME_RE.match(path)
    if not m:
        return None
    actions = "pull" if method in ("GET", "HEAD") else "pull,push"
    return f"repository:{m.group(1)}:{actions}"


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = value.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_RE.findall(rest))


class Registry:
    """A client for one registry base URL (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        base_url: str,
        creds: tuple[str, str] | None = None,
        *,
        timeout: float = 600.0,
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"benchmarks target loopback over plain HTTP only, not {base_url}")
        self.base_url = base_url.rstrip("/")
        self.host = u.hostname
        self.port = u.port or 80
        self.creds = creds
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self.basic = False
        self.auth_mode = "none"  # "none", "bearer" or "basic": what the registry asked for
        self.token_fetches = 0
        self.cancelled = False  # set to make every later request fail at once

    # -- connections -------------------------------------------------------
    def _conn(self, host: str | None = None, port: int | None = None) -> http.client.HTTPConnection:
        key = (host or self.host, port or self.port)
        conns: dict[Any, http.client.HTTPConnection] = getattr(self._local, "conns", None) or {}
        self._local.conns = conns
        conn = conns.get(key)
        if conn is None:
            conn = http.client.HTTPConnection(key[0], key[1], timeout=self.timeout, blocksize=BLOCK)
            conns[key] = conn
        return conn

    def _drop(self, host: str | None = None, port: int | None = None) -> None:
        key = (host or self.host, port or self.port)
        conns = getattr(self._local, "conns", {})
        conn = conns.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()
        self._local.conns = {}

    # -- auth --------------------------------------------------------------
    def _basic_header(self) -> str:
        if not self.creds:
            return ""
        raw = f"{self.creds[0]}:{self.creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _cached_token(self, scope: str | None) -> str | None:
        entry = self._tokens.get(scope or "")
        if entry and entry[1] > time.monotonic():
            return entry[0]
        return None

    def _store_token(self, scope: str | None, token: str, expiry: float) -> None:
        """Cache under the whole scope string and under each of its scopes (the
        token of a mount also serves the manifest PUT that follows)."""
        with self._lock:
            if len(self._tokens) > 20_000:
                now = time.monotonic()
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            keys = [scope or "", *((scope or "").split())]
            for key in keys:
                old = self._tokens.get(key)
                if old is None or old[1] < expiry:
                    self._tokens[key] = (token, expiry)
            self.token_fetches += 1

    def _fetch_token(self, params: dict[str, str], scope: str | None) -> str:
        """Token for ``scope`` (several scopes are separated by spaces, and sent as
        repeated ``scope`` parameters, as docker does for a cross-repository mount)."""
        realm = params.get("realm", "")
        q: list[tuple[str, str]] = [("service", params.get("service", ""))]
        wanted = (scope or params.get("scope") or "").split()
        if params.get("scope") and params["scope"] not in wanted:
            wanted.append(params["scope"])
        q += [("scope", s) for s in wanted]
        url = urllib.parse.urlsplit(realm)
        if url.hostname not in ("127.0.0.1", "localhost", "::1", self.host):
            raise RuntimeError(f"token realm {realm} is not on loopback")
        path = (url.path or "/") + "?" + urllib.parse.urlencode(q)
        headers = {}
        if self.creds:
            headers["Authorization"] = self._basic_header()
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=self.timeout)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RegistryError("GET", realm, resp.status, data)
        doc = json.loads(data)
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RuntimeError(f"token service answered without a token: {data[:200]!r}")
        ttl = float(doc.get("expires_in") or 60)
        self._store_token(scope, str(token), time.monotonic() + max(ttl - 10, 5))
        return str(token)

    def auth_headers(self, method: str, path: str, min_ttl: float = 30) -> dict[str, str]:
        """Headers that authorize ``method path`` for at least ``min_ttl`` seconds
        (runs the 401 flow if needed)."""
        scope = scope_for(method, path)
        with self._lock:
            entry = self._tokens.get(scope or "")
            if entry and entry[1] - time.monotonic() < min_ttl:
                del self._tokens[scope or ""]
        token = self._cached_token(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.basic:
            return {"Authorization": self._basic_header()}
        r = self.request("HEAD" if method in ("GET", "HEAD") else method, path, expect=None)
        del r
        token = self._cached_token(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.basic:
            return {"Authorization": self._basic_header()}
        return {}

    # -- requests ------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Body = None,
        headers: dict[str, str] | None = None,
        expect: Iterable[int] | None = (200,),
        sink: bool = False,
        digest: bool = False,
        chunked: bool = False,
        follow: bool = True,
        extra_scope: str | None = None,
    ) -> Response:
        """One request (plus the auth retry and GET/HEAD redirects).

        ``sink``: stream the response body and count it instead of keeping it
        (``digest`` also hashes it). ``chunked``: send the body with chunked
        transfer encoding and no Content-Length. ``extra_scope``: another scope
        the token must carry (the source repository of a mount).
        """
        if self.cancelled:
            raise RuntimeError("cancelled: the workload's time budget ran out")
        scope = scope_for(method, path)
        if extra_scope:
            scope = f"{scope} {extra_scope}" if scope else extra_scope
        hdrs = dict(headers or {})
        url = path if path.startswith("/") else urllib.parse.urlsplit(path).path
        for attempt in range(3):
            auth = {}
            token = self._cached_token(scope)
            if token:
                auth["Authorization"] = f"Bearer {token}"
            elif self.basic:
                auth["Authorization"] = self._basic_header()
            resp = self._once(
                method, url, body, {**hdrs, **auth}, sink, digest, chunked, self.host, self.port
            )
            if resp.status == 401 and attempt < 2:
                scheme, params = parse_challenge(resp.header("www-authenticate"))
                if scheme == "bearer" and params.get("realm"):
                    self.auth_mode = "bearer"
                    self._fetch_token(params, scope)
                    continue
                if scheme == "basic" and self.creds and not self.basic:
                    self.auth_mode = "basic"
                    self.basic = True
                    continue
            break
        hops = 0
        while follow and method in ("GET", "HEAD") and resp.status in (301, 302, 303, 307, 308):
            hops += 1
            loc = urllib.parse.urljoin(self.base_url + url, resp.header("location"))
            u = urllib.parse.urlsplit(loc)
            if u.hostname not in ("127.0.0.1", "localhost", "::1") or hops > 5:
                raise RuntimeError(f"redirect to {loc} refused")
            same = (u.hostname, u.port or 80) == (self.host, self.port)
            fwd = {k: v for k, v in hdrs.items() if same or k.lower() != "authorization"}
            if same and "Authorization" in auth:
                fwd["Authorization"] = auth["Authorization"]
            target = u.path + ("?" + u.query if u.query else "")
            t = resp.seconds
            resp = self._once(method, target, None, fwd, sink, digest, False, u.hostname, u.port)
            resp.seconds += t
        if expect is not None and resp.status not in tuple(expect):
            raise RegistryError(method, url, resp.status, resp.body)
        return resp

    def _once(
        self,
        method: str,
        url: str,
        body: Body,
        headers: dict[str, str],
        sink: bool,
        digest: bool,
        chunked: bool,
        host: str | None,
        port: int | None,
    ) -> Response:
        payload: Any = body() if callable(body) else body
        t0 = time.perf_counter()
        for retry in range(2):
            conn = self._conn(host, port)
            try:
                if chunked:
                    conn.request(method, url, body=payload, headers=headers, encode_chunked=True)
                else:
                    if payload is None and method in ("PUT", "POST", "PATCH"):
                        headers = {"Content-Length": "0", **headers}
                    conn.request(method, url, body=payload, headers=headers)
                raw = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed: reconnect once, if the
                # body can be sent again.
                self._drop(host, port)
                if retry or not (payload is None or isinstance(payload, bytes)):
                    raise
        resp = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()})
        resp.links = [v for k, v in raw.getheaders() if k.lower() == "link"]
        if method == "HEAD":
            raw.read()
        elif sink:
            h = hashlib.sha256() if digest else None
            buf = bytearray(BLOCK * 4)
            view = memoryview(buf)
            n = 0
            while True:
                got = raw.readinto(view)
                if not got:
                    break
                n += got
                if h is not None:
                    h.update(view[:got])
            resp.nbytes = n
            resp.sha256 = "sha256:" + h.hexdigest() if h is not None else None
        else:
            resp.body = raw.read()
            resp.nbytes = len(resp.body)
        resp.seconds = time.perf_counter() - t0
        if raw.will_close:
            self._drop(host, port)
        return resp

    # -- OCI helpers -----------------------------------------------------------
    def location(self, resp: Response) -> str:
        loc = resp.header("location")
        if not loc:
            raise RuntimeError("upload response without Location")
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")

    @staticmethod
    def _with_query(loc: str, **params: str) -> str:
        sep = "&" if "?" in loc else "?"
        return loc + sep + urllib.parse.urlencode(params)

    def blob_exists(self, name: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{name}/blobs/{digest}", expect=(200, 404))
        return r.status == 200

    def push_blob(self, name: str, data: bytes, digest: str | None = None) -> str:
        """POST + monolithic PUT of a small blob; returns its digest."""
        digest = digest or sha256(data)
        r = self.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
        self.request(
            "PUT",
            self._with_query(self.location(r), digest=digest),
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return digest

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Cross-repository mount; False if the registry started an upload instead."""
        q = urllib.parse.urlencode({"mount": digest, "from": source})
        r = self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/?{q}",
            expect=(201, 202),
            extra_scope=f"repository:{source}:pull",
        )
        if r.status == 202:
            # No mount: finish with a cancel; the caller uploads the bytes instead.
            self.request("DELETE", self.location(r), expect=None)
            return False
        return True

    def push_manifest(self, name: str, ref: str, manifest: bytes, media_type: str) -> str:
        r = self.request(
            "PUT",
            f"/v2/{name}/manifests/{ref}",
            body=manifest,
            headers={"Content-Type": media_type},
            expect=(201,),
        )
        return r.header("docker-content-digest") or sha256(manifest)

    def push_small_image(
        self, name: str, tag: str, layer: bytes, config: bytes | None = None
    ) -> tuple[str, bytes]:
        """Push config + one layer + an OCI manifest; returns (digest, manifest bytes)."""
        config = config or b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}'
        cfg = self.push_blob(name, config)
        lay = self.push_blob(name, layer)
        manifest = image_manifest(cfg, len(config), [(lay, len(layer))])
        return self.push_manifest(name, tag, manifest, MT_OCI_MANIFEST), manifest


def image_manifest(config: str, config_size: int, layers: list[tuple[str, int]]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": config, "size": config_size},
        "layers": [{"mediaType": MT_OCI_LAYER, "digest": d, "size": s} for d, s in layers],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def next_link(resp: Response) -> str | None:
    """The path of a ``Link: <…>; rel="next"`` header, if any."""
    for value in resp.links:
        for part in value.split(","):
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
            if m:
                u = urllib.parse.urlsplit(m.group(1))
                return u.path + ("?" + u.query if u.query else "")
    return None
