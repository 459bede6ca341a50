"""This Berth as one side of a copy, through the registry's own services: no
HTTP, no token, no second copy of the bytes in flight (the blob store is read
and written directly, with the digest checked by ``upload_complete``).

A manifest written here by replication is marked (``Arrival``) in the same
transaction as its ``manifest.pushed`` event, so the event consumer can tell it
from a client's push and event-based push policies never send it back."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from registry.errors import RegistryError
from registry.models import ArtifactLabel, Repository, Tag
from registry.models import Manifest as ManifestRow
from registry.services import blobs, manifests, uploads
from registry.storage import blob_store
from replication.adapters.base import AdapterError, Artifact, Info, Manifest, NotFound, Upload
from replication.models import Arrival

READ_BLOCK = 1 << 20
OWNER = "replication"


def _fail(exc: RegistryError, what: str) -> Exception:
    if exc.status == 404:
        return NotFound(what)
    return AdapterError(f"{what}: {exc}")


class LocalAdapter:
    kind = "local"
    identity = "local"

    def __init__(self, *, policy_name: str = "") -> None:
        self.policy_name = policy_name

    def info(self) -> Info:
        return Info(type=self.kind, description="This Berth", labels=True)

    def ping(self) -> None:
        return None

    def repositories(self, *, named: list[str] | None = None) -> list[str]:
        rows = Repository.objects.order_by("name")
        if named is not None:
            rows = rows.filter(name__in=named)
        return list(rows.values_list("name", flat=True))

    def artifacts(self, repository: str) -> list[Artifact]:
        tags: dict[int, list[str]] = {}
        digests: dict[int, tuple[str, str]] = {}
        for mid, digest, media_type, name in Tag.objects.filter(
            repository__name=repository
        ).values_list("manifest_id", "manifest__digest", "manifest__media_type", "name"):
            tags.setdefault(mid, []).append(name)
            digests[mid] = (digest, media_type)
        labels: dict[int, list[str]] = {}
        for mid, label in ArtifactLabel.objects.filter(manifest_id__in=list(tags)).values_list(
            "manifest_id", "label__name"
        ):
            labels.setdefault(mid, []).append(label)
        return [
            Artifact(
                repository,
                digests[mid][0],
                tuple(sorted(names)),
                tuple(sorted(labels.get(mid, []))),
                digests[mid][1],
            )
            for mid, names in sorted(tags.items())
        ]

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        if reference.startswith("sha256:"):
            found = ManifestRow.objects.filter(repository__name=repository, digest=reference)
            return reference if found.exists() else None
        return (
            Tag.objects.filter(repository__name=repository, name=reference)
            .values_list("manifest__digest", flat=True)
            .first()
        )

    def manifest_get(self, repository: str, reference: str) -> Manifest:
        try:
            found = manifests.manifest_get(repository_name=repository, reference=reference)
        except RegistryError as exc:
            raise _fail(exc, f"manifest {repository}:{reference}") from None
        return Manifest(body=bytes(found.payload), media_type=found.media_type, digest=found.digest)

    def manifest_put(self, repository: str, reference: str, manifest: Manifest) -> None:
        try:
            with transaction.atomic():
                Arrival.objects.bulk_create(
                    [
                        Arrival(
                            repository_name=repository,
                            digest=manifest.digest,
                            policy_name=self.policy_name,
                        )
                    ],
                    ignore_conflicts=True,
                )
                manifests.manifest_put(
                    repository_name=repository,
                    reference=reference,
                    body=manifest.body,
                    content_type=manifest.media_type,
                    client="replication",
                )
        except RegistryError as exc:
            raise _fail(exc, f"PUT manifest {repository}:{reference}") from None

    def manifest_delete(self, repository: str, digest: str) -> None:
        if self.manifest_digest(repository, digest) is None:
            return
        try:
            manifests.manifest_delete(
                repository_name=repository, reference=digest, client="replication"
            )
        except RegistryError as exc:
            if exc.status != 404:
                raise _fail(exc, f"DELETE {repository}@{digest}") from None

    def referrers(self, repository: str, digest: str) -> list[str]:
        return [
            d["digest"]
            for d in manifests.referrers_list(
                repository_name=repository, digest=digest, artifact_type="", limit=1000
            )
        ]

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            blobs.blob_stat(repository_name=repository, digest=digest)
        except RegistryError:
            return False
        return True

    def blob_mount(self, repository: str, digest: str, source: str) -> bool:
        try:
            found = blobs.blob_mount(
                repository_name=repository, digest=digest, source_names=[source]
            )
        except RegistryError as exc:
            raise _fail(exc, f"mount {digest}") from None
        return found is not None

    @contextmanager
    def blob_read(
        self, repository: str, digest: str, *, offset: int = 0
    ) -> Iterator[Iterator[bytes]]:
        if not self.blob_exists(repository, digest):
            raise NotFound(f"blob {digest} in {repository}")
        fh = blob_store().open_blob(digest)
        try:
            fh.seek(offset)
            yield iter(lambda: fh.read(READ_BLOCK), b"")
        finally:
            fh.close()

    def upload_start(self, repository: str) -> Upload:
        try:
            row = uploads.upload_start(repository_name=repository, owner=OWNER)
        except RegistryError as exc:
            raise _fail(exc, f"start an upload in {repository}") from None
        return Upload(repository=repository, location=str(row.id))

    def upload_chunk(self, upload: Upload, data: bytes) -> None:
        row = uploads.upload_get(repository_name=upload.repository, upload_id=upload.location)
        try:
            uploads.upload_append(
                upload=row, stream=io.BytesIO(data), length=len(data), start=upload.offset
            )
        except RegistryError as exc:
            raise _fail(exc, "append to the upload") from None
        upload.offset += len(data)

    def upload_offset(self, upload: Upload) -> int:
        row = uploads.upload_get(repository_name=upload.repository, upload_id=upload.location)
        return int(row.size)

    def for_writing(self) -> None:
        return None

    def upload_finish(self, upload: Upload, digest: str, data: bytes = b"") -> None:
        from registry.reference import parse_digest

        row = uploads.upload_get(repository_name=upload.repository, upload_id=upload.location)
        try:
            uploads.upload_complete(
                upload=row,
                digest=parse_digest(digest),
                stream=io.BytesIO(data),
                length=len(data),
                start=upload.offset if data else None,
            )
        except RegistryError as exc:
            raise _fail(exc, f"finish blob {digest}") from None
        upload.offset += len(data)
