"""Parsing and validating manifests and indexes (OCI image-spec 1.1, Docker schema 2).

Pure functions over bytes: no database, no storage. ``parse_manifest`` refuses
anything ambiguous — unknown or mismatched media types, an image manifest with
``manifests``, an index with ``layers`` — with MANIFEST_INVALID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kit.jsontext import lone_surrogate_at
from registry.errors import Code, RegistryError
from registry.reference import parse_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}
IMAGE_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# Layers that may live elsewhere (`urls`) and so need not be in the repository.
FOREIGN_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
MAX_DESCRIPTORS = 10_000
# RFC 6838: type and subtype of at most 127 characters each (Manifest.artifact_type).
MEDIA_TYPE_MAX = 255


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    @property
    def foreign(self) -> bool:
        return bool(self.urls) and self.media_type in FOREIGN_LAYER_TYPES


@dataclass(slots=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict[str, str] | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _invalid(message: str, **detail: Any) -> RegistryError:
    return RegistryError(Code.MANIFEST_INVALID, message, detail=detail or None)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _invalid("duplicate key in JSON object", key=key[:100])
        out[key] = value
    return out


def _load(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("manifest is not valid UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except RegistryError:
        raise
    except RecursionError:
        # The C parser stops deep nesting at the interpreter's recursion limit.
        raise _invalid("JSON nested too deeply") from None
    except ValueError as exc:
        raise _invalid("manifest is not valid JSON", error=str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    where = lone_surrogate_at(doc)
    if where is not None:
        # Valid JSON text, but no Unicode: stored, it would fail every read.
        raise _invalid(f"manifest holds a lone surrogate (\\ud800-\\udfff) at {where}")
    return doc


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a string")
    if "\x00" in value:
        # Kept in text columns, where PostgreSQL refuses NUL; no media type has one.
        raise _invalid(f"{what} must not contain NUL")
    return value


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _invalid(f"{what} must be a descriptor object")
    media_type = _str(raw.get("mediaType"), f"{what}.mediaType")
    digest = str(parse_digest(_str(raw.get("digest"), f"{what}.digest")))
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{what}.size must be a non-negative integer")
    urls = raw.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{what}.urls must be a list of strings")
    artifact_type = raw.get("artifactType", "")
    return Descriptor(media_type, digest, size, tuple(urls), _str(artifact_type, "artifactType"))


def _descriptors(raw: Any, what: str) -> list[Descriptor]:
    if not isinstance(raw, list):
        raise _invalid(f"{what} must be a list")
    if len(raw) > MAX_DESCRIPTORS:
        raise _invalid(f"{what} lists more than {MAX_DESCRIPTORS} descriptors")
    return [_descriptor(item, f"{what}[{i}]") for i, item in enumerate(raw)]


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    content_type = content_type.split(";", 1)[0].strip()
    if declared in SCHEMA1 or content_type in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise _invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    if declared and content_type and declared != content_type:
        raise _invalid(
            "Content-Type does not match the manifest's mediaType",
            content_type=content_type[:200],
            media_type=declared[:200],
        )
    media_type = declared or content_type
    if not media_type:
        # OCI allows mediaType to be absent in the body; the shape must then say.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise _invalid("unsupported manifest media type", media_type=media_type[:200])
    return media_type


def parse_manifest(body: bytes, content_type: str) -> ParsedManifest:
    doc = _load(body)
    media_type = _media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    parsed = ParsedManifest(media_type=media_type)
    if media_type in IMAGE_TYPES:
        if "manifests" in doc:
            raise _invalid("an image manifest must not carry 'manifests'")
        if "config" not in doc:
            raise _invalid("an image manifest needs a config descriptor")
        parsed.config = _descriptor(doc["config"], "config")
        parsed.layers = _descriptors(doc.get("layers", []), "layers")
    else:
        if "layers" in doc or "config" in doc:
            raise _invalid("an index must not carry 'layers' or 'config'")
        parsed.manifests = _descriptors(doc.get("manifests", []), "manifests")
        for i, child in enumerate(parsed.manifests):
            if child.media_type not in MANIFEST_TYPES:
                raise _invalid(f"manifests[{i}] is not a manifest media type")
    if "subject" in doc:
        parsed.subject = _descriptor(doc["subject"], "subject")
    artifact_type = doc.get("artifactType", "")
    parsed.artifact_type = _str(artifact_type, "artifactType")
    annotations = doc.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise _invalid("annotations must map strings to strings")
        if any("\x00" in k or "\x00" in v for k, v in annotations.items()):
            raise _invalid("annotations must not contain NUL")  # PostgreSQL's jsonb refuses it
        parsed.annotations = annotations
    if len(referrer_artifact_type(parsed)) > MEDIA_TYPE_MAX:
        raise _invalid(f"artifact type longer than {MEDIA_TYPE_MAX} characters")
    return parsed


def referrer_artifact_type(parsed: ParsedManifest) -> str:
    """The artifactType a referrers listing shows for this manifest."""
    if parsed.artifact_type:
        return parsed.artifact_type
    if parsed.config is not None:
        return parsed.config.media_type
    return ""
