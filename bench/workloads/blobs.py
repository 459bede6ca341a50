"""Blob push (monolithic, chunked, streamed) and pull of one large random blob.

The blob is one file of random bytes, made once per run and hashed once before
anything is timed. Every registry receives the same bytes; nginx serves the same
file. A push is timed from the POST that opens the session to the 201 of the
closing PUT; a pull from the GET to the last byte read (the client counts the
bytes into a reused 4 MiB buffer; it does not hash in the timed pulls). A
separate, untimed pull checks the bytes against the digest.

The chunked and streamed pushes send the same file behind a short unique prefix
(so each push is new content to the registry, not a blob it already holds).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.client import BLOCK, Registry
from bench.context import Context

REPO = "bench/blobs"


def blob_file(ctx: Context) -> tuple[Path, str, int]:
    """The run's random blob: (path, digest, size), made once."""
    if "blob" in ctx.shared:
        return ctx.shared["blob"]
    size = ctx.p["blob_size"]
    root = ctx.workdir / "blobfile"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "blob.bin"
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * BLOCK))
            h.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    ctx.shared["blob"] = (path, "sha256:" + h.hexdigest(), size)
    return ctx.shared["blob"]


def _variant(path: Path, prefix: bytes) -> tuple[str, int]:
    h = hashlib.sha256(prefix)
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * BLOCK):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), len(prefix) + path.stat().st_size


def _chunks(path: Path, prefix: bytes, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of prefix + file, in 1 MiB pieces."""
    pos = start
    if pos < len(prefix):
        piece = prefix[pos : min(end, len(prefix))]
        yield piece
        pos += len(piece)
    with open(path, "rb") as fh:
        fh.seek(pos - len(prefix))
        while pos < end:
            data = fh.read(min(BLOCK, end - pos))
            if not data:
                raise RuntimeError("blob file shorter than expected")
            yield data
            pos += len(data)


def push_monolithic(reg: Registry, name: str, path: Path, digest: str, size: int) -> float:
    t0 = time.perf_counter()
    r = reg.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
    reg.request(
        "PUT",
        reg._with_query(reg.location(r), digest=digest),
        body=lambda: open(path, "rb"),  # noqa: SIM115 - http.client reads and we reopen per try
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        expect=(201,),
    )
    return time.perf_counter() - t0


def push_chunked(
    reg: Registry, name: str, path: Path, prefix: bytes, digest: str, size: int, chunk: int
) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = reg.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
    loc = reg.location(r)
    start = patches = 0
    while start < size:
        end = min(size, start + chunk)
        r = reg.request(
            "PATCH",
            loc,
            body=lambda s=start, e=end: _chunks(path, prefix, s, e),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{end - 1}",
                "Content-Length": str(end - start),
            },
            expect=(202,),
        )
        loc = reg.location(r)
        start = end
        patches += 1
    reg.request("PUT", reg._with_query(loc, digest=digest), expect=(201,))
    return time.perf_counter() - t0, patches


def push_streamed(
    reg: Registry, name: str, path: Path, prefix: bytes, digest: str, size: int
) -> float:
    """One PATCH with chunked transfer encoding (no Content-Length), then PUT."""
    t0 = time.perf_counter()
    r = reg.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
    r = reg.request(
        "PATCH",
        reg.location(r),
        body=lambda: _chunks(path, prefix, 0, size),
        headers={"Content-Type": "application/octet-stream"},
        chunked=True,
        expect=(202,),
    )
    reg.request("PUT", reg._with_query(reg.location(r), digest=digest), expect=(201,))
    return time.perf_counter() - t0


def pull(reg: Registry, path: str, size: int, repeats: int) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        r = reg.request("GET", path, sink=True)
        if r.nbytes != size:
            raise RuntimeError(f"pulled {r.nbytes} bytes of {size}")
        times.append(r.seconds)
    return {
        "seconds": times,
        "bytes": size,
        "best_Bps": size / min(times),
        "median_Bps": size / statistics.median(times),
    }


def settle_disk() -> None:
    """Write back what earlier pushes (and earlier peers) left dirty in the page
    cache, so that no push pays for the disk work of the one before it: on this
    machine that swung a 1 GiB push between 300 and 650 MB/s."""
    os.sync()


def run(ctx: Context, reg: Registry, *, pushes: bool = True) -> dict[str, Any]:
    path, digest, size = blob_file(ctx)
    out: dict[str, Any] = {"size": size, "digest": digest}
    if pushes:
        settle_disk()
        secs = push_monolithic(reg, f"{REPO}-mono", path, digest, size)
        out["push_monolithic"] = {"seconds": secs, "Bps": size / secs}
        ctx.log(f"  monolithic push: {size / secs / 1e6:.0f} MB/s")

        prefix = b"chunked " + os.urandom(8)
        d2, s2 = _variant(path, prefix)
        settle_disk()
        secs, patches = push_chunked(
            reg, f"{REPO}-chunked", path, prefix, d2, s2, ctx.p["chunk_size"]
        )
        out["push_chunked"] = {
            "seconds": secs,
            "Bps": s2 / secs,
            "chunk_size": ctx.p["chunk_size"],
            "patches": patches,
        }
        ctx.log(f"  chunked push ({patches} PATCH): {s2 / secs / 1e6:.0f} MB/s")

        prefix = b"streamed" + os.urandom(8)
        d3, s3 = _variant(path, prefix)
        settle_disk()
        try:
            secs = push_streamed(reg, f"{REPO}-streamed", path, prefix, d3, s3)
            out["push_streamed"] = {"seconds": secs, "Bps": s3 / secs}
            ctx.log(f"  streamed push: {s3 / secs / 1e6:.0f} MB/s")
        except Exception as exc:
            out["push_streamed"] = {"error": str(exc)[:500]}
            ctx.log(f"  streamed push failed: {exc!s:.200}")
        blob_path = f"/v2/{REPO}-mono/blobs/{digest}"
    else:
        blob_path = "/" + path.name
    out["pull"] = pull(reg, blob_path, size, ctx.p["pull_repeats"])
    ctx.log(f"  pull: best {out['pull']['best_Bps'] / 1e6:.0f} MB/s")
    check = reg.request("GET", blob_path, sink=True, digest=True)
    out["pull_verified"] = check.sha256 == digest and check.nbytes == size
    if not out["pull_verified"]:
        raise RuntimeError(f"pulled blob does not match: {check.sha256} {check.nbytes}")
    return out


def sha256_rate(ctx: Context) -> dict[str, Any]:
    """hashlib.sha256 over in-memory 1 MiB blocks on one core: the hashing limit."""
    total = ctx.p["sha256_size"]
    block = os.urandom(BLOCK)
    rates = []
    for _ in range(3):
        h = hashlib.sha256()
        t0 = time.perf_counter()
        for _ in range(total // BLOCK):
            h.update(block)
        rates.append(total / (time.perf_counter() - t0))
    return {"bytes": total, "Bps": max(rates), "runs_Bps": rates}
