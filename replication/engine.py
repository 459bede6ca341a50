"""The copy engine: one artifact from a source adapter to a destination.

Order: children before their index, blobs before their manifest, the tag
last, then the referrers (signatures, SBOMs) whose subject it is. A blob the
destination has is skipped (HEAD); a blob of the same registry is mounted;
anything else streams from the source into the destination's upload in
chunks of ``chunk`` bytes — never staged to disk, at most about two chunks in
memory whatever the blob's size. The sha256 is computed on the way and the
destination checks it again when the upload is closed.

A chunk the destination did not acknowledge is sent again from its
acknowledged range (the upload's ``Range``); a source stream that breaks is
reopened at the byte it stopped (an HTTP range request). ``should_stop`` is
asked between chunks (it also renews the task's lease), and a speed limit
paces the chunks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from replication.adapters.base import Adapter, AdapterError, Manifest, NotFound, Upload
from replication.adapters.http import Unreachable

MiB = 1 << 20
SOURCE_REOPENS = 5


class Stopped(Exception):
    """The execution was asked to stop."""


@dataclass
class Copier:
    src: Adapter
    dst: Adapter
    log: Callable[[str], None]
    should_stop: Callable[[], bool] = lambda: False
    chunk: int = 16 * MiB
    speed_kb: int = 0  # KB/s, 0 or less: unlimited
    override: bool = True
    sleep: Callable[[float], None] = time.sleep
    bytes_copied: int = 0
    blobs_copied: int = 0
    blobs_skipped: int = 0
    manifests_put: int = 0
    _done: set[str] = field(default_factory=set)
    _paced_from: float = 0.0
    _paced_bytes: int = 0

    # -- an artifact -------------------------------------------------------------

    def copy(self, src_repo: str, dst_repo: str, references: list[str]) -> bool:
        """Copy the artifact the ``references`` (tags, or one digest) name;
        False when there was nothing to do (every tag already there)."""
        changed = False
        for reference in references:
            digest = self.src.manifest_digest(src_repo, reference)
            if digest is None:
                raise NotFound(f"{src_repo}:{reference} is not in the source")
            if reference.startswith("sha256:"):
                there: str | None = (
                    reference if self.dst.manifest_digest(dst_repo, reference) else None
                )
            else:
                there = self.dst.manifest_digest(dst_repo, reference)
            if there == digest:
                self.log(f"skip {dst_repo}:{reference}: the destination has {digest}")
            elif there is not None and not self.override:
                self.log(f"keep {dst_repo}:{reference}: it names {there} there (override off)")
            else:
                self._ensure(src_repo, dst_repo, digest, tag=reference)
                changed = True
            changed |= self._referrers(src_repo, dst_repo, digest)
        return changed

    def _referrers(self, src_repo: str, dst_repo: str, subject: str, depth: int = 0) -> bool:
        """Signatures, SBOMs and attestations travel with their subject."""
        if depth > 3:
            return False
        changed = False
        for digest in self.src.referrers(src_repo, subject):
            if self.dst.manifest_digest(dst_repo, digest) != digest:
                self._ensure(src_repo, dst_repo, digest, tag=None)
                self.log(f"referrer {digest} of {subject} copied")
                changed = True
            changed |= self._referrers(src_repo, dst_repo, digest, depth + 1)
        return changed

    def _ensure(self, src_repo: str, dst_repo: str, digest: str, *, tag: str | None) -> None:
        """The manifest ``digest`` and everything it references at the
        destination, then the tag (if any) on it."""
        self._check_stop()
        present = digest in self._done or self.dst.manifest_digest(dst_repo, digest) is not None
        if tag is None and present:
            self._done.add(digest)
            return
        manifest = self.src.manifest_get(src_repo, digest)
        if manifest.digest != digest:
            raise AdapterError(f"manifest {digest}: the source served bytes of {manifest.digest}")
        if not present:
            parsed = json.loads(manifest.body)
            for child in parsed.get("manifests") or []:
                self._ensure(src_repo, dst_repo, child["digest"], tag=None)
            for blob_digest, size in _blobs(parsed):
                self.blob(src_repo, dst_repo, blob_digest, size)
        self.dst.manifest_put(dst_repo, tag or digest, manifest)
        self.manifests_put += 1
        self._done.add(digest)
        self.log(f"put {dst_repo}{':' + tag if tag else '@' + digest} ({manifest.media_type})")

    # -- a blob ---------------------------------------------------------------------

    def blob(self, src_repo: str, dst_repo: str, digest: str, size: int) -> None:
        if self.dst.blob_exists(dst_repo, digest):
            self.blobs_skipped += 1
            self.log(f"skip blob {digest}: the destination has it")
            return
        if self.src.identity == self.dst.identity and self.dst.blob_mount(
            dst_repo, digest, src_repo
        ):
            self.blobs_skipped += 1
            self.log(f"mounted blob {digest} from {src_repo}")
            return
        hasher = hashlib.sha256()
        chunks = self._source(src_repo, digest, size)
        first = next(chunks, b"")
        pending = next(chunks, None)
        upload = self.dst.upload_start(dst_repo)
        hasher.update(first)
        total = len(first)
        if pending is None:
            # A blob of one chunk goes whole with the closing PUT: one request.
            self._verify(digest, hasher, total, size)
            self._check_stop()
            self.dst.upload_finish(upload, digest, first)
            self._sent(len(first))
        else:
            self._send(upload, first)
            self._sent(len(first))
            del first
            while pending is not None:
                self._check_stop()
                hasher.update(pending)
                self._send(upload, pending)
                total += len(pending)
                self._sent(len(pending))
                pending = next(chunks, None)
            self._verify(digest, hasher, total, size)
            self.dst.upload_finish(upload, digest)
        self.blobs_copied += 1
        self.log(f"copied blob {digest} ({total} bytes)")

    def _sent(self, count: int) -> None:
        self.bytes_copied += count
        self._pace(count)

    @staticmethod
    def _verify(digest: str, hasher: Any, total: int, size: int) -> None:
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest or (size >= 0 and total != size):
            raise AdapterError(f"blob {digest}: the source sent {total} bytes hashing to {actual}")

    def _source(self, repo: str, digest: str, size: int) -> Iterator[bytes]:
        """The blob in chunks of ``self.chunk`` bytes (the last shorter); a
        broken stream is reopened where it stopped (unless it stopped at the end)."""
        buf = bytearray()
        offset = 0
        reopens = 0
        while size < 0 or offset < size or offset == 0:
            try:
                with self.src.blob_read(repo, digest, offset=offset) as pieces:
                    for piece in pieces:
                        buf += piece
                        offset += len(piece)
                        while len(buf) >= self.chunk:
                            with memoryview(buf) as view:
                                data = bytes(view[: self.chunk])
                            del buf[: self.chunk]
                            yield data
                break
            except (requests.RequestException, Unreachable) as exc:
                reopens += 1
                if reopens > SOURCE_REOPENS:
                    raise Unreachable(
                        f"blob {digest}: the source stream broke {reopens} times: {exc}"
                    ) from exc
                self.log(f"source stream of {digest} broke at byte {offset}: {exc}; resuming")
                self.sleep(min(2.0**reopens, 30.0))
        if buf:
            yield bytes(buf)

    def _send(self, upload: Upload, data: bytes) -> None:
        """One chunk to the destination; when it fails, ask the upload what
        arrived and send what did not."""
        start = upload.offset
        for attempt in range(4):
            try:
                done = upload.offset - start
                self.dst.upload_chunk(upload, data[done:] if done else data)
                return
            except (Unreachable, AdapterError, requests.RequestException) as exc:
                if attempt == 3:
                    raise
                acked = self.dst.upload_offset(upload)
                if not start <= acked <= start + len(data):
                    raise AdapterError(
                        f"upload {upload.location}: the destination holds {acked} bytes, "
                        f"expected {start}..{start + len(data)}"
                    ) from exc
                self.log(f"chunk at {start} failed ({exc}); resuming at {acked}")
                upload.offset = acked
                if acked == start + len(data):
                    return

    def _pace(self, sent: int) -> None:
        if self.speed_kb <= 0:
            return
        now = time.monotonic()
        if not self._paced_from:
            self._paced_from = now
        self._paced_bytes += sent
        due = self._paced_from + self._paced_bytes / (self.speed_kb * 1024)
        if due > now:
            self.sleep(due - now)

    def _check_stop(self) -> None:
        if self.should_stop():
            raise Stopped("the execution was stopped")


def _blobs(parsed: dict[str, Any]) -> list[tuple[str, int]]:
    """The config and layers of an image manifest (schema 1's fsLayers too)."""
    out: list[tuple[str, int]] = []
    config = parsed.get("config")
    if isinstance(config, dict) and isinstance(config.get("digest"), str):
        out.append((config["digest"], int(config.get("size", -1))))
    for layer in parsed.get("layers") or parsed.get("fsLayers") or []:
        if isinstance(layer, dict):
            digest = layer.get("digest") or layer.get("blobSum")
            if isinstance(digest, str):
                out.append((digest, int(layer.get("size", -1))))
    return out


def chunk_for(speed_kb: int, chunk: int) -> int:
    """Smaller chunks under a low speed limit, so a stop is seen within seconds."""
    if speed_kb <= 0:
        return chunk
    return max(64 * 1024, min(chunk, speed_kb * 1024 * 2))


__all__ = ["Copier", "Manifest", "Stopped", "chunk_for"]
