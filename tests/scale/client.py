"""A hand-written /v2 client for the replica test: every request records which
replica answered it (haproxy's header), and in ``retry`` mode the client rides
out a replica that dies under it, as a real client with retries does: it
repeats a request after a connection error or a 5xx, and resumes a chunked
upload from the offset the registry reports."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.conftest import ADMIN
from tests.registry.helpers import OCI_MANIFEST, sha256

from .cluster import REPLICA_HEADER

# A request is tried this many times (and for at most DEADLINE seconds) before
# the client gives up.
ATTEMPTS = 40
DEADLINE = 60.0
TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class GaveUp(AssertionError):
    pass


@dataclass
class Stats:
    """What a set of clients saw, shared between their threads."""

    replicas: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self, response: requests.Response) -> None:
        with self.lock:
            self.replicas[response.headers.get(REPLICA_HEADER, "?")] += 1

    def failed(self, what: str) -> None:
        with self.lock:
            self.retries += 1
            self.errors[what] += 1


class Client:
    def __init__(self, url: str, stats: Stats | None = None, retry: bool = False) -> None:
        self.url = url
        self.stats = stats or Stats()
        self.retry = retry
        self.http = requests.Session()
        self.http.auth = ADMIN
        # Which replica served each request of this client, in order.
        self.served_by: list[str] = []

    def _absolute(self, location: str) -> str:
        return location if location.startswith("http") else self.url + location

    def request(self, method: str, path: str, **kw) -> requests.Response:
        """One request; with ``retry``, repeated on connection errors and 5xx."""
        url = self._absolute(path)
        deadline = time.monotonic() + DEADLINE
        for attempt in range(ATTEMPTS):
            try:
                r = self.http.request(method, url, timeout=30, **kw)
                if method != "HEAD" and r.status_code < 300:
                    _ = r.content  # the whole body, or an error
            except TRANSIENT as exc:
                if not self.retry:
                    raise
                self.stats.failed(type(exc).__name__)
            else:
                self.stats.served(r)
                self.served_by.append(r.headers.get(REPLICA_HEADER, "?"))
                if r.status_code < 500 or not self.retry:
                    return r
                self.stats.failed(f"{r.status_code}")
            if time.monotonic() > deadline:
                break
            time.sleep(min(0.1 * (attempt + 1), 1.0))
        raise GaveUp(f"{method} {path}: no answer after {attempt + 1} attempts")

    # -- blobs -------------------------------------------------------------------

    def start_upload(self, repo: str) -> str:
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        return self._absolute(r.headers["Location"])

    def upload_status(self, location: str) -> tuple[int, str] | None:
        """(bytes accepted, location) of a session, None when it is gone."""
        r = self.request("GET", location)
        if r.status_code == 404:
            return None
        assert r.status_code == 204, r.text
        # "0-0" is an empty session (or one of a single byte: this client never
        # sends a chunk that short); else "0-<last byte>".
        end = int(r.headers["Range"].split("-")[1])
        return (end + 1 if end else 0), self._absolute(r.headers["Location"])

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        assert r.status_code in (200, 404), r.status_code
        return r.status_code == 200

    def push_blob_chunked(self, repo: str, data: bytes, chunk: int) -> str:
        """POST, PATCH chunks with Content-Range, PUT with the digest. With
        ``retry``: after a failure, ask the session where it stands and go on
        from there (a new session when it is gone and the blob is not there)."""
        digest = sha256(data)
        location = self.start_upload(repo)
        offset = 0
        trail: list[str] = []  # what went wrong, for the message when giving up
        for _ in range(ATTEMPTS * 4):
            if offset < len(data):
                piece = data[offset : offset + chunk]
                assert offset or len(piece) != 1, "Range 0-0 would be ambiguous"
                r = self._send(
                    "PATCH",
                    location,
                    data=piece,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                    },
                )
                if r is not None and r.status_code == 202:
                    offset = int(r.headers["Range"].split("-")[1]) + 1
                    location = self._absolute(r.headers["Location"])
                    continue
            else:
                r = self._send("PUT", location, params={"digest": digest})
                if r is not None and r.status_code == 201:
                    assert r.headers["Docker-Content-Digest"] == digest
                    return digest
            assert self.retry, (r.status_code, r.text) if r is not None else "no answer"
            answer = "-" if r is None else f"{r.status_code} {r.headers.get(REPLICA_HEADER)}"
            trail.append(f"{offset}/{len(data)}: {answer} {'' if r is None else r.text[:300]}")
            # Busy (a dead writer's lease, until it expires), a 5xx, or no answer.
            time.sleep(0.3)
            status = self.upload_status(location)
            if status is None:  # committed by the request we lost, or purged
                if self.blob_exists(repo, digest):
                    return digest
                location, offset = self.start_upload(repo), 0
            else:
                offset, location = status
        raise GaveUp(f"upload of {digest} did not finish: {trail[-8:]}")

    def _send(self, method: str, location: str, **kw) -> requests.Response | None:
        """Once (the caller decides what a failure means for the session)."""
        try:
            r = self.http.request(method, location, timeout=30, **kw)
        except TRANSIENT as exc:
            if not self.retry:
                raise
            self.stats.failed(type(exc).__name__)
            return None
        self.stats.served(r)
        self.served_by.append(r.headers.get(REPLICA_HEADER, "?"))
        if r.status_code >= 500 or r.status_code == 416:
            self.stats.failed(str(r.status_code))
        return r

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic: POST with ?digest= and the whole body."""
        digest = sha256(data)
        r = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        return digest

    def get_blob(self, repo: str, digest: str) -> requests.Response:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}")

    # -- manifests ---------------------------------------------------------------

    def put_manifest(self, repo: str, ref: str, body: bytes) -> requests.Response:
        return self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            data=body,
            headers={"Content-Type": OCI_MANIFEST},
        )

    def get_manifest(self, repo: str, ref: str) -> requests.Response:
        return self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
