"""Manifest GET and HEAD by tag under load: wrk at 1, 16, 64 and 256 connections.

One small image (config + one layer + OCI manifest) is pushed, the manifest is
fetched once and checked, and wrk hammers ``/v2/bench/manifest/manifests/v1``
with the Accept header docker sends and, where the registry asked for it, the
Bearer token (or Basic credentials) the client obtained through the registry's
own 401 flow. wrk runs 2 threads (the machine has 2 cores, shared with the
server). Requests per second, p50 and p99 latency and the count of non-2xx
answers are parsed from ``wrk --latency``.

HEAD goes through ``ab -k -i`` (apache2-utils) instead: Debian's wrk 4.1.0
waits for a body after a HEAD response that carries Content-Length (as a
registry's must) and so measures nothing. ab is single-threaded and reports
percentiles in whole milliseconds; GET and HEAD figures come from different
load generators and are compared across registries, not with each other.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

from bench import procs
from bench.client import MANIFEST_ACCEPT, Registry
from bench.context import Context
from bench.peers.base import apt_install

REPO = "bench/manifest"
TAG = "v1"

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparsable latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+\w+),", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def lua_script(method: str, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"']
    for k, v in headers.items():
        v = v.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    return "\n".join(lines) + "\n"


def wrk(
    ctx: Context, url: str, method: str, headers: dict[str, str], conns: int, secs: float
) -> dict[str, Any]:
    script = ctx.workdir / f"wrk-{method.lower()}.lua"
    script.write_text(lua_script(method, headers))
    threads = max(1, min(conns, os.cpu_count() or 2))
    argv = [
        "wrk", "--latency", "-t", str(threads), "-c", str(conns), "-d", f"{int(secs)}s",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 120, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed: {r.stderr[-1000:]}")
    res = parse_wrk(r.stdout)
    res.update({"connections": conns, "threads": threads, "seconds": secs})
    res["valid"] = res["requests"] > 0 and res["non_2xx"] <= 0.01 * res["requests"]
    return res


def parse_ab(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    m = re.search(r"Requests per second:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Complete requests:\s+(\d+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\d+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = float(m.group(1))
    m = re.search(r"Non-2xx responses:\s+(\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Failed requests:\s+(\d+)", out)
    res["socket_errors"] = int(m.group(1)) if m else 0
    return res


def ab(url: str, method: str, headers: dict[str, str], conns: int, secs: float) -> dict[str, Any]:
    if method != "HEAD":
        raise ValueError("ab is only used for HEAD")
    argv = ["ab", "-q", "-k", "-i", "-c", str(conns), "-t", str(secs), "-n", "100000000"]
    argv += ["-s", "10"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    r = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=secs + 120, check=False
    )
    if r.returncode != 0 and "Requests per second" not in r.stdout:
        raise RuntimeError(f"ab failed: {r.stderr[-1000:]}")
    res = parse_ab(r.stdout)
    res.update({"connections": conns, "threads": 1, "seconds": secs, "tool": "ab"})
    res["valid"] = res["requests"] > 0 and res["non_2xx"] <= 0.01 * res["requests"]
    return res


def run(ctx: Context, reg: Registry, sampler: Any = None) -> dict[str, Any]:
    if not (shutil.which("wrk") and shutil.which("ab")):
        apt_install(ctx, "wrk", "apache2-utils")
    digest, manifest = reg.push_small_image(REPO, TAG, os.urandom(2048))
    path = f"/v2/{REPO}/manifests/{TAG}"
    got = reg.request("GET", path, headers={"Accept": MANIFEST_ACCEPT})
    if got.body != manifest:
        raise RuntimeError("manifest GET returned other bytes than were pushed")
    out: dict[str, Any] = {
        "manifest_bytes": len(manifest),
        "digest": digest,
        "auth": reg.auth_mode,
        "runs": {},
    }
    secs = ctx.p["wrk_seconds"]
    for method in ("GET", "HEAD"):
        for conns in ctx.p["wrk_connections"]:
            headers = {"Accept": MANIFEST_ACCEPT, **reg.auth_headers(method, path)}
            if sampler is not None:
                sampler.label = f"manifest {method} c={conns}"
            # A short warm-up at this concurrency (connections, caches), not recorded.
            if method == "HEAD":
                ab(reg.base_url + path, method, headers, conns, 1)
                steal = procs.Steal()
                res = ab(reg.base_url + path, method, headers, conns, secs)
            else:
                wrk(ctx, reg.base_url + path, method, headers, conns, 1)
                steal = procs.Steal()
                res = wrk(ctx, reg.base_url + path, method, headers, conns, secs)
                res["tool"] = "wrk"
            res["steal_share"] = steal.result()
            res["auth_header"] = headers.get("Authorization", "").split(" ")[0] or "none"
            out["runs"][f"{method} c={conns}"] = res
            ctx.log(
                f"  manifest {method} c={conns}: {res['rps']:.0f} req/s, "
                f"p50 {res.get('p50_ms', 0):.2f} ms, p99 {res.get('p99_ms', 0):.2f} ms"
                + (f", {res['non_2xx']} non-2xx" if res["non_2xx"] else "")
                + (f", steal {100 * res['steal_share']:.0f}%" if res["steal_share"] >= 0.05 else "")
            )
    if sampler is not None:
        sampler.label = "other"
    return out
