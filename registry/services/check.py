"""Consistency of database and blob storage (``manage.py registry_check``)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from django.db.models import F

from registry.manifests import parse_manifest
from registry.models import Blob, Manifest, ManifestChild, RepositoryBlob, Tag
from registry.services import quotas
from registry.storage import blob_store


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blobs_hashed: int = 0
    manifests: int = 0
    tags: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _hash_matches(digest: str) -> bool:
    algorithm, hexpart = digest.split(":", 1)
    hasher = hashlib.new(algorithm)
    with blob_store().open_blob(digest) as fh:
        while data := fh.read(1 << 20):
            hasher.update(data)
    return hasher.hexdigest() == hexpart


def registry_check(*, sample: float = 1.0, seed: int | None = None) -> CheckReport:
    """Every blob row has its bytes (of its size; hashed fully or a ``sample``
    fraction) unless garbage collection is deleting it, no such blob is linked
    anywhere, every manifest's bytes hash to its digest and reference what it
    names, every tag resolves, every project's quota usage is what it holds;
    stray files are reported as warnings."""
    report = CheckReport()
    store = blob_store()
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    known = set()
    for digest, size, deleting in Blob.objects.values_list("digest", "size", "deleting").iterator():
        known.add(digest)
        if deleting:
            # Marked by garbage collection: its bytes may be gone already; the
            # next run finishes the sweep (docs/gc.md).
            report.warnings.append(f"blob {digest}: being deleted by garbage collection")
            continue
        if not store.blob_exists(digest):
            report.errors.append(f"blob {digest}: bytes missing from storage")
            continue
        actual = store.blob_size(digest)
        if actual != size:
            report.errors.append(f"blob {digest}: {actual} bytes stored, {size} recorded")
            continue
        if sample >= 1.0 or rng.random() < sample:
            report.blobs_hashed += 1
            if not _hash_matches(digest):
                report.errors.append(f"blob {digest}: bytes do not hash to the digest")
    for digest in store.blob_digests():
        if digest not in known:
            report.warnings.append(f"stored bytes {digest} have no blob row (left for GC)")

    for repo_name, digest in RepositoryBlob.objects.filter(blob__deleting=True).values_list(
        "repository__name", "blob__digest"
    ):
        report.errors.append(f"blob {digest}: linked into {repo_name} while being deleted")
    linked: dict[int, set[str]] = {}
    for repo_id, digest in RepositoryBlob.objects.values_list("repository_id", "blob__digest"):
        linked.setdefault(repo_id, set()).add(digest)
    children: dict[int, set[str]] = {}
    for parent_id, digest in ManifestChild.objects.values_list("parent_id", "child__digest"):
        children.setdefault(parent_id, set()).add(digest)
    manifests = Manifest.objects.values_list(
        "pk", "repository_id", "repository__name", "digest", "media_type", "payload"
    )
    for pk, repo_id, repo_name, digest, media_type, payload in manifests.iterator():
        report.manifests += 1
        payload = bytes(payload)
        algorithm, hexpart = digest.split(":", 1)
        where = f"manifest {repo_name}@{digest}"
        if hashlib.new(algorithm, payload).hexdigest() != hexpart:
            report.errors.append(f"{where}: bytes do not hash to the digest")
            continue
        parsed = parse_manifest(payload, media_type)
        descriptors = ([parsed.config] if parsed.config else []) + parsed.layers
        for d in descriptors:
            if not d.foreign and d.digest not in linked.get(repo_id, set()):
                report.errors.append(f"{where}: references blob {d.digest} not in the repository")
        for d in parsed.manifests:
            if d.digest not in children.get(pk, set()):
                report.errors.append(f"{where}: lists manifest {d.digest} not in the repository")
    report.tags = Tag.objects.count()
    dangling = Tag.objects.exclude(manifest__repository_id=F("repository_id")).values_list(
        "repository__name", "name"
    )
    for repo_name, tag in dangling:
        report.errors.append(f"tag {repo_name}:{tag}: points into another repository")
    report.errors.extend(quotas.verify())
    return report
