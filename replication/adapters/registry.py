"""Any OCI Distribution registry over ``/v2`` (the ``docker-registry`` type),
and the token-auth registry without a catalog (``docker-hub``: repositories
are the ones a policy names). The Harbor/Berth adapter extends it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urljoin

import requests

from replication.adapters.base import (
    AdapterError,
    Artifact,
    Info,
    Manifest,
    NotFound,
    Upload,
)
from replication.adapters.http import Auth, Client, Denied

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]
)
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
READ_BLOCK = 1 << 20
PAGE = 1000


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _next_link(r: requests.Response) -> str | None:
    link = r.links.get("next", {}).get("url")
    return str(link) if link else None


def _check(r: requests.Response, what: str) -> None:
    if r.status_code in (401, 403):
        raise Denied(f"{what}: the registry refused the credentials ({r.status_code})")
    if r.status_code == 404:
        raise NotFound(what)
    if r.status_code >= 400:
        raise AdapterError(f"{what}: HTTP {r.status_code}: {r.text[:300]}")


class RegistryAdapter:
    kind = "docker-registry"
    has_catalog = True

    def __init__(
        self,
        url: str,
        *,
        auth: Auth,
        verify: bool | str = True,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.client = Client(self.url, auth=auth, verify=verify, retries=retries, backoff=backoff)
        self.identity = self.url
        # A destination reads with the token it writes with: one token per
        # repository instead of two (for_writing()).
        self.read_actions = "pull"

    def for_writing(self) -> None:
        self.read_actions = "pull,push"

    def _read(self, repository: str) -> str:
        return f"repository:{repository}:{self.read_actions}"

    def info(self) -> Info:
        return Info(
            type=self.kind,
            description="An OCI Distribution registry (/v2/_catalog, tags/list)",
            supported_resource_filters=("name", "tag"),
            lists_repositories=self.has_catalog,
        )

    def ping(self) -> None:
        r = self.client.request("GET", "/v2/", scope="")
        _check(r, "GET /v2/")

    # -- listing ------------------------------------------------------------------

    def repositories(self, *, named: list[str] | None = None) -> list[str]:
        if not self.has_catalog:
            return [n for n in named or [] if self._exists(n)]
        names: list[str] = []
        path: str | None = f"/v2/_catalog?n={PAGE}"
        while path:
            r = self.client.request("GET", path, scope="registry:catalog:*")
            _check(r, "GET /v2/_catalog")
            names.extend(r.json().get("repositories") or [])
            link = _next_link(r)
            path = urljoin(self.url + "/", link) if link else None
        if named is not None:
            wanted = set(named)
            names = [n for n in names if n in wanted]
        return names

    def _exists(self, repository: str) -> bool:
        r = self.client.request(
            "GET", f"/v2/{repository}/tags/list?n=1", scope=self._read(repository)
        )
        return r.status_code == 200

    def tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={PAGE}"
        while path:
            r = self.client.request("GET", path, scope=self._read(repository))
            _check(r, f"tags of {repository}")
            tags.extend(r.json().get("tags") or [])
            link = _next_link(r)
            path = urljoin(self.url + "/", link) if link else None
        return tags

    def artifacts(self, repository: str) -> list[Artifact]:
        by_digest: dict[str, list[str]] = {}
        for tag in self.tags(repository):
            digest = self.manifest_digest(repository, tag)
            if digest:
                by_digest.setdefault(digest, []).append(tag)
        return [Artifact(repository, d, tuple(sorted(t))) for d, t in by_digest.items()]

    # -- manifests ----------------------------------------------------------------

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        r = self.client.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=self._read(repository),
            headers={"Accept": MANIFEST_TYPES},
        )
        if r.status_code == 404:
            return None
        _check(r, f"HEAD {repository}:{reference}")
        digest = r.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return self.manifest_get(repository, reference).digest

    def manifest_get(self, repository: str, reference: str) -> Manifest:
        r = self.client.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=self._read(repository),
            headers={"Accept": MANIFEST_TYPES},
        )
        _check(r, f"manifest {repository}:{reference}")
        body = r.content
        import hashlib

        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise AdapterError(f"manifest {repository}@{reference}: its bytes hash to {digest}")
        media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type == "application/json":
            media_type = str(json.loads(body).get("mediaType") or media_type)
        return Manifest(body=body, media_type=media_type, digest=digest)

    def manifest_put(self, repository: str, reference: str, manifest: Manifest) -> None:
        r = self.client.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=_push(repository),
            headers={"Content-Type": manifest.media_type},
            data=manifest.body,
        )
        _check(r, f"PUT manifest {repository}:{reference}")

    def manifest_delete(self, repository: str, digest: str) -> None:
        r = self.client.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", scope=f"repository:{repository}:*"
        )
        if r.status_code in (404, 202, 200):
            return
        _check(r, f"DELETE {repository}@{digest}")

    def referrers(self, repository: str, digest: str) -> list[str]:
        r = self.client.request(
            "GET", f"/v2/{repository}/referrers/{digest}", scope=self._read(repository)
        )
        if r.status_code == 200 and "json" in r.headers.get("Content-Type", ""):
            return [m["digest"] for m in r.json().get("manifests") or [] if m.get("digest")]
        # No referrers API: the tag schema (sha256-<hex>), an index of them.
        tag = digest.replace(":", "-")
        if self.manifest_digest(repository, tag) is None:
            return []
        index = json.loads(self.manifest_get(repository, tag).body)
        return [m["digest"] for m in index.get("manifests") or [] if m.get("digest")]

    # -- blobs --------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        r = self.client.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=self._read(repository)
        )
        if r.status_code == 404:
            return False
        _check(r, f"HEAD blob {digest}")
        return True

    def blob_mount(self, repository: str, digest: str, source: str) -> bool:
        r = self.client.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={quote(digest)}&from={quote(source)}",
            scope=f"{_push(repository)} {_pull(source)}",
        )
        if r.status_code == 201:
            return True
        if r.status_code == 202 and r.headers.get("Location"):
            # Not mounted: the registry opened an upload instead; cancel it.
            self.client.request(
                "DELETE", self._location(r.headers["Location"]), scope=_push(repository)
            ).close()
        return False

    @contextmanager
    def blob_read(
        self, repository: str, digest: str, *, offset: int = 0
    ) -> Iterator[Iterator[bytes]]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        r = self.client.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=self._read(repository),
            headers=headers,
            stream=True,
        )
        try:
            _check(r, f"GET blob {digest}")
            if offset and r.status_code != 206:
                raise AdapterError(f"blob {digest}: the source does not serve ranges")
            yield r.iter_content(READ_BLOCK)
        finally:
            r.close()

    def _location(self, location: str) -> str:
        return urljoin(self.url + "/", location)

    def upload_start(self, repository: str) -> Upload:
        r = self.client.request("POST", f"/v2/{repository}/blobs/uploads/", scope=_push(repository))
        _check(r, f"start an upload in {repository}")
        if r.status_code != 202 or not r.headers.get("Location"):
            raise AdapterError(f"start an upload in {repository}: HTTP {r.status_code}")
        return Upload(repository=repository, location=self._location(r.headers["Location"]))

    def upload_chunk(self, upload: Upload, data: bytes) -> None:
        end = upload.offset + len(data) - 1
        r = self.client.request(
            "PATCH",
            upload.location,
            scope=_push(upload.repository),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{upload.offset}-{end}",
                "Content-Length": str(len(data)),
            },
            data=data,
        )
        _check(r, "PATCH upload")
        if r.headers.get("Location"):
            upload.location = self._location(r.headers["Location"])
        upload.offset += len(data)

    def upload_offset(self, upload: Upload) -> int:
        r = self.client.request("GET", upload.location, scope=_push(upload.repository))
        _check(r, "GET upload")
        if r.headers.get("Location"):
            upload.location = self._location(r.headers["Location"])
        accepted = r.headers.get("Range", "")
        # "0-N": N+1 bytes accepted; "0-0" with nothing is 0 on some registries.
        if "-" not in accepted:
            return 0
        end = int(accepted.rsplit("-", 1)[1])
        return end + 1 if end > 0 or upload.offset > 0 else 0

    def upload_finish(self, upload: Upload, digest: str, data: bytes = b"") -> None:
        """Close the upload, sending ``data`` (the whole of a small blob) with it."""
        sep = "&" if "?" in upload.location else "?"
        headers = {"Content-Length": str(len(data))}
        if data:
            headers["Content-Type"] = "application/octet-stream"
        r = self.client.request(
            "PUT",
            f"{upload.location}{sep}digest={quote(digest)}",
            scope=_push(upload.repository),
            headers=headers,
            data=data,
        )
        _check(r, f"PUT blob {digest}")
        upload.offset += len(data)


class NoCatalogAdapter(RegistryAdapter):
    """A token-auth registry without a usable catalog (Docker Hub and the
    like): the policy's name filters name the repositories."""

    kind = "docker-hub"
    has_catalog = False

    def info(self) -> Info:
        return Info(
            type=self.kind,
            description="A token registry without a catalog: repositories named by the policy",
            supported_resource_filters=("name", "tag"),
            lists_repositories=False,
        )
