"""What an artifact's page shows beside its fields (docs/portal.md): the blobs
its manifest lists with their sizes, the build history its image config
records, the platforms of an index with the child artifacts they point at, and
its referrers (Harbor's accessories). Read from the stored manifest and blobs;
nothing here writes, and a manifest that does not parse shows nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kit.errors import NotFound
from registry.models import Manifest, ManifestChild
from registry.services import accessories, additions

# An index lists at most this many platforms on the page; a manifest this many layers.
MAX_ROWS = 500


@dataclass(frozen=True, slots=True)
class Layer:
    kind: str  # "config" or "layer"
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the image config's ``history``."""

    created: str
    created_by: str
    empty_layer: bool
    comment: str


@dataclass(frozen=True, slots=True)
class Platform:
    """One manifest of an index: its platform, and the child artifact's id when
    the repository holds it."""

    os: str
    architecture: str
    variant: str
    digest: str
    media_type: str
    size: int
    child_id: int | None


def _document(manifest: Manifest) -> dict[str, Any]:
    try:
        document = json.loads(bytes(manifest.payload))
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _descriptors(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = document.get(key)
    if not isinstance(found, list):
        return []
    return [d for d in found[:MAX_ROWS] if isinstance(d, dict)]


def layers(manifest: Manifest) -> list[Layer]:
    """The config (if any), then the layers, as the manifest describes them."""
    document = _document(manifest)
    rows = []
    config = document.get("config")
    if isinstance(config, dict):
        rows.append(
            Layer(
                "config",
                _text(config.get("mediaType")),
                _text(config.get("digest")),
                _size(config.get("size")),
            )
        )
    rows.extend(
        Layer(
            "layer",
            _text(layer.get("mediaType")),
            _text(layer.get("digest")),
            _size(layer.get("size")),
        )
        for layer in _descriptors(document, "layers")
    )
    return rows


def history(manifest: Manifest) -> list[Step]:
    """The image config's build history (``created``, ``created_by``,
    ``empty_layer``), read as the API's ``build_history`` addition reads it;
    nothing for an artifact that is no image or whose config is not here (not
    linked, too large, or missing from storage: the page still answers)."""
    if "build_history" not in additions.available(manifest):
        return []
    try:
        found = additions.addition_get(manifest=manifest, name="build_history")
    except (NotFound, ValueError, OSError):  # OSError: the blob is gone from storage
        return []
    entries = json.loads(found.content)
    return [
        Step(
            created=_text(entry.get("created")),
            created_by=_text(entry.get("created_by")),
            empty_layer=entry.get("empty_layer") is True,
            comment=_text(entry.get("comment")),
        )
        for entry in entries[:MAX_ROWS]
    ]


def platforms(manifest: Manifest) -> list[Platform]:
    """The manifests of an index with their platforms (one query for the
    children the repository holds); nothing for an image."""
    manifests = _descriptors(_document(manifest), "manifests")
    if not manifests:
        return []
    children = dict(
        ManifestChild.objects.filter(parent=manifest).values_list("child__digest", "child_id")
    )
    rows = []
    for entry in manifests:
        platform = entry.get("platform")
        platform = platform if isinstance(platform, dict) else {}
        digest = _text(entry.get("digest"))
        rows.append(
            Platform(
                os=_text(platform.get("os")),
                architecture=_text(platform.get("architecture")),
                variant=_text(platform.get("variant")),
                digest=digest,
                media_type=_text(entry.get("mediaType")),
                size=_size(entry.get("size")),
                child_id=children.get(digest),
            )
        )
    return rows


def referrers(manifest: Manifest) -> list[tuple[str, Manifest]]:
    """(Harbor's accessory type, the referrer) for each artifact whose
    ``subject`` is this one (one indexed query)."""
    rows = accessories.accessories_of(manifest)[:MAX_ROWS]
    return [(accessories.accessory_type(row), row) for row in rows]
