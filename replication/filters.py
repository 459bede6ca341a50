"""A policy's filters: on repository name, tag, label and resource type, each
``matches`` or ``excludes``, in doublestar (Harbor's) or RE2 regular
expressions (beyond Harbor, #12877), compiled through kit/patterns.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit import patterns
from kit.errors import Invalid
from replication.adapters.base import Artifact

TYPES = ("name", "tag", "label", "resource")
DECORATIONS = ("matches", "excludes")
KINDS = ("doublestar", "regex")


@dataclass(frozen=True)
class Filter:
    type: str
    value: str
    decoration: str = "matches"
    kind: str = "doublestar"

    def as_json(self) -> dict[str, str]:
        return {
            "type": self.type,
            "value": self.value,
            "decoration": self.decoration,
            "kind": self.kind,
        }


def parse(raw: Any) -> list[Filter]:
    """Harbor's ``filters`` ([{type, value, decoration}]) plus Berth's ``kind``;
    every pattern compiled now, so a bad one is a 400 at save time."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid("filters must be a list")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise Invalid("each filter must be an object")
        kind = str(item.get("type", ""))
        if kind not in TYPES:
            raise Invalid(f"filter type must be one of {', '.join(TYPES)}")
        value = item.get("value")
        if isinstance(value, list):  # Harbor's label filter may carry a list
            value = ",".join(str(v) for v in value)
        if not isinstance(value, str) or not value:
            raise Invalid(f"the {kind} filter needs a value")
        decoration = str(item.get("decoration") or "matches")
        if decoration not in DECORATIONS:
            raise Invalid("decoration must be matches or excludes")
        pattern_kind = str(item.get("kind") or "doublestar")
        if pattern_kind not in KINDS:
            raise Invalid("kind must be doublestar or regex")
        if kind in ("name", "tag"):
            patterns.compile_pattern(pattern_kind, value)
        out.append(Filter(kind, value, decoration, pattern_kind))
    return out


def _match(f: Filter, text: str) -> bool:
    return patterns.compile_pattern(f.kind, f.value).matches(text)


def _keep(f: Filter, matched: bool) -> bool:
    return matched if f.decoration == "matches" else not matched


def repository_ok(filters: list[Filter], name: str) -> bool:
    return all(_keep(f, _match(f, name)) for f in filters if f.type == "name")


def tags_kept(filters: list[Filter], tags: tuple[str, ...]) -> list[str]:
    tag_filters = [f for f in filters if f.type == "tag"]
    return [t for t in tags if all(_keep(f, _match(f, t)) for f in tag_filters)]


def artifact_ok(filters: list[Filter], artifact: Artifact) -> bool:
    for f in filters:
        if f.type == "label":
            wanted = {v.strip() for v in f.value.split(",") if v.strip()}
            if not _keep(f, wanted <= set(artifact.labels)):
                return False
        elif f.type == "resource" and not _keep(f, f.value in ("image", "artifact")):
            return False
    return True


def literal_names(filters: list[Filter]) -> list[str] | None:
    """Repositories a policy names outright (registries without a catalog)."""
    names = [
        n.strip()
        for f in filters
        if f.type == "name" and f.decoration == "matches" and f.kind == "doublestar"
        for n in f.value.strip("{}").split(",")
    ]
    if not names or any(c in n for n in names for c in "*?[]"):
        return None
    return names
