"""Accessories, as Harbor calls them: artifacts that refer to another through
their OCI 1.1 ``subject`` (signatures, SBOMs, attestations), in the same
repository. Berth keeps no table of its own for them: a manifest's
``subject_digest`` (indexed with its repository) is the link."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Q, QuerySet

from registry.models import Manifest

# Harbor's accessory types, by the referrer's artifactType (or config media
# type); any other referrer is a "subject.accessory".
SUBJECT = "subject.accessory"
TYPES = {
    "application/vnd.cncf.notary.signature": "signature.notation",
    "application/vnd.dev.cosign.simplesigning.v1+json": "signature.cosign",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign",
    "application/vnd.goharbor.harbor.sbom.v1": "harbor.sbom",
}


def accessory_type(manifest: Manifest) -> str:
    return TYPES.get(manifest.artifact_type, SUBJECT)


def _of_type(kind: str) -> Q:
    """The referrers Harbor would list under accessory type ``kind``."""
    if kind == SUBJECT:
        return ~Q(artifact_type__in=list(TYPES))
    return Q(artifact_type__in=[t for t, k in TYPES.items() if k == kind])


def accessories_of(subject: Manifest, *, kind: str | None = None) -> QuerySet[Manifest]:
    """The accessories of one artifact, newest first (one indexed query)."""
    rows = Manifest.objects.filter(
        repository_id=subject.repository_id, subject_digest=subject.digest
    ).defer("payload")
    if kind:
        rows = rows.filter(_of_type(kind))
    return rows.order_by("-created_at", "-id")


def accessories_for(subjects: Iterable[Manifest]) -> dict[int, list[Manifest]]:
    """subject's id → its accessories, for a page of artifacts (one query)."""
    subjects = list(subjects)
    if not subjects:
        return {}
    digests: dict[int, set[str]] = defaultdict(set)
    for subject in subjects:
        digests[subject.repository_id].add(subject.digest)
    wanted = Q()
    for repository_id, names in digests.items():
        wanted |= Q(repository_id=repository_id, subject_digest__in=sorted(names))
    found: dict[tuple[int, str], list[Manifest]] = defaultdict(list)
    for row in Manifest.objects.filter(wanted).defer("payload").order_by("-created_at", "-id"):
        found[(row.repository_id, row.subject_digest)].append(row)
    return {s.pk: found.get((s.repository_id, s.digest), []) for s in subjects}
