"""The portal's listings at scale (issue 15): with ``portal_projects`` projects
(10,000 in the full profile) and ``portal_artifacts`` artifacts in one
repository (100,000), how long each listing page takes to answer.

Berth only (the other registries have no portal). The rows are bulk-inserted
by ``portal_seed.py`` run in Berth's own environment (see there why). Then a
browser-like client signs in at ``/`` (the session cookie, CSRF as a browser
sends it) as the system administrator and as ``portaldev`` (a developer in a
tenth of the projects: its lists go through the policy module's cut) and
fetches each page ``portal_repeats`` times over one keep-alive connection on
the loopback: the time to the whole response, which is the server's time plus
well under a millisecond of loopback. Target: under 100 ms per page.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import statistics
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench import procs
from bench.context import Context
from bench.peers.berth import Berth

TARGET_MS = 100.0
SEED = Path(__file__).with_name("portal_seed.py")
CSRF_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """One keep-alive connection with a cookie jar of name=value pairs."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.cookies: dict[str, str] = {}

    def get(self, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        method = "GET"
        if body is not None:
            method = "POST"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        seconds = time.perf_counter() - t0
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return resp.status, data, seconds

    def sign_in(self, username: str, password: str) -> None:
        status, page, _ = self.get("/")
        token = CSRF_RE.search(page)
        if status != 200 or token is None:
            raise RuntimeError(f"no sign-in form at / ({status})")
        form = urllib.parse.urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1).decode(),
            }
        ).encode()
        status, page, _ = self.get("/", form)
        if status != 302:
            raise RuntimeError(f"sign-in as {username} failed: {status} {page[:300]!r}")

    def close(self) -> None:
        self.conn.close()


def seed(ctx: Context, peer: Berth, password: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = procs.run(
        [
            ctx.berth_python,
            "-P",  # not bench/workloads/ first on the path: its concurrent.py is no stdlib
            str(SEED),
            str(ctx.p["portal_projects"]),
            str(ctx.p["portal_artifacts"]),
            password,
        ],
        env={**peer.env(), "PYTHONPATH": str(peer.tree)},
        cwd=peer.tree,
        timeout=1800,
    )
    ids: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    ids["seconds"] = time.perf_counter() - t0
    ctx.log(
        f"  seeded {ids['projects']} projects and {ids['artifacts']} artifacts "
        f"in {ids['seconds']:.0f} s"
    )
    return ids


def pages(ids: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(who, what, path) of each page measured."""
    repo = ids["repository"]
    artifacts = f"/admin/registry/manifest/?repository__id__exact={repo}"
    # A page in the middle of each list (100 rows a page; the admin counts from 1).
    project_page = max(1, ids["projects"] // 2 // 100 // 10 * 10) or 1
    artifact_page = max(1, min(ids["artifacts"] // 2 // 100, 100))
    both = [
        ("project list", "/admin/accounts/project/"),
        (f"project list, page {project_page}", f"/admin/accounts/project/?p={project_page}"),
        ("project list, sorted by repositories", "/admin/accounts/project/?o=4"),
        ("project search", "/admin/accounts/project/?q=0999"),
        ("search page", "/search/?q=pp-0999"),
        ("artifact list", artifacts),
        (f"artifact list, page {artifact_page}", f"{artifacts}&p={artifact_page}"),
        ("artifact list, sorted by size", f"{artifacts}&o=5"),
        ("tag search", "/admin/registry/tag/?q=v99990"),
        ("artifact page", f"/admin/registry/manifest/{ids['artifact']}/change/"),
        ("project's repositories tab", f"/projects/{ids['project']}/repositories/"),
    ]
    mine = [
        ("dashboard", "/"),
        ("my projects", "/admin/accounts/project/?mine=1"),
    ]
    return [("admin", what, path) for what, path in both] + [
        ("portaldev", what, path) for what, path in [*mine, *both]
    ]


def run(ctx: Context, peer: Any) -> dict[str, Any]:
    if not isinstance(peer, Berth):
        return {"skipped": "the portal is Berth's"}
    password = "Portal" + secrets.token_hex(6) + "9"
    ids = seed(ctx, peer, password)
    host, port = "127.0.0.1", peer.port
    browsers = {"admin": Browser(host, port), "portaldev": Browser(host, port)}
    browsers["admin"].sign_in("admin", peer.password)
    browsers["portaldev"].sign_in("portaldev", password)
    results = []
    try:
        for who, what, path in pages(ids):
            browser = browsers[who]
            status, body, _ = browser.get(path)  # warm: templates, caches, connection
            if status != 200:
                raise RuntimeError(f"{who} {path}: {status} {body[:300]!r}")
            times = []
            for _ in range(ctx.p["portal_repeats"]):
                status, body, seconds = browser.get(path)
                if status != 200:
                    raise RuntimeError(f"{who} {path}: {status}")
                times.append(seconds * 1000)
            times.sort()
            row = {
                "who": who,
                "page": what,
                "path": path,
                "median_ms": statistics.median(times),
                "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                "max_ms": times[-1],
                "bytes": len(body),
            }
            row["met"] = row["median_ms"] < TARGET_MS
            results.append(row)
            ctx.log(
                f"  {who:9} {what:38} median {row['median_ms']:6.1f} ms, "
                f"p95 {row['p95_ms']:6.1f} ms{'' if row['met'] else '  (over target)'}"
            )
    finally:
        for browser in browsers.values():
            browser.close()
    return {
        "projects": ids["projects"],
        "artifacts": ids["artifacts"],
        "seed_seconds": ids["seconds"],
        "target_ms": TARGET_MS,
        "pages": results,
        "all_met": all(r["met"] for r in results),
    }
