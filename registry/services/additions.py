"""Harbor's artifact additions that Berth can derive from stored blobs: an
image's ``build_history`` (its config's ``history``), a Helm chart's
``values.yaml``, ``readme.md`` and ``dependencies`` (from the chart archive).
Anything else (vulnerabilities, sbom, license, files: no scanner here) is
Harbor's 404. Every read is bounded: a config or chart is read whole into
memory only below a size cap, and a chart unpacks to at most MAX_UNPACKED."""

from __future__ import annotations

import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

import yaml

from kit.errors import NotFound
from registry.models import Blob, Manifest, RepositoryBlob
from registry.storage import blob_store

IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar.gz"

IMAGE_ADDITIONS = ("build_history",)
CHART_ADDITIONS = ("values.yaml", "readme.md", "dependencies")

MAX_CONFIG = 4 << 20  # an image config (JSON)
MAX_CHART = 16 << 20  # a chart archive, compressed
MAX_UNPACKED = 64 << 20  # the same, unpacked
MAX_FILE = 4 << 20  # one file of the chart we show


@dataclass(frozen=True)
class Addition:
    content: bytes
    content_type: str


def available(manifest: Manifest) -> tuple[str, ...]:
    """The additions an artifact has (Harbor's ``addition_links``)."""
    if manifest.artifact_type in IMAGE_CONFIGS:
        return IMAGE_ADDITIONS
    if manifest.artifact_type == HELM_CONFIG:
        return CHART_ADDITIONS
    return ()


def addition_get(*, manifest: Manifest, name: str) -> Addition:
    """Addition ``name`` of ``manifest`` (fetched with its payload), read from
    the blobs its repository holds."""
    if name not in available(manifest):
        raise NotFound(message=f"addition {name} is not available for this artifact")
    document = json.loads(bytes(manifest.payload))
    if name == "build_history":
        config = json.loads(_blob(manifest, document.get("config"), MAX_CONFIG))
        history = config.get("history") if isinstance(config, dict) else None
        entries = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
        return Addition(json.dumps(entries).encode(), "application/json; charset=utf-8")
    layers = [d for d in document.get("layers") or [] if isinstance(d, dict)]
    chart = next((d for d in layers if d.get("mediaType") == HELM_CHART), None)
    files = _chart_files(_blob(manifest, chart, MAX_CHART))
    if name == "values.yaml":
        return Addition(files.get("values.yaml", b""), "text/plain; charset=utf-8")
    if name == "readme.md":
        return Addition(files.get("readme.md", b""), "text/markdown; charset=utf-8")
    return Addition(json.dumps(_dependencies(files)).encode(), "application/json; charset=utf-8")


def _blob(manifest: Manifest, descriptor: Any, limit: int) -> bytes:
    """The bytes of a blob the manifest references, if its repository holds it
    and it is no larger than ``limit``."""
    digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
    if not isinstance(digest, str):
        raise NotFound(message="the artifact references no such blob")
    linked = RepositoryBlob.objects.filter(
        repository_id=manifest.repository_id, blob__digest=digest
    ).exists()
    size = Blob.objects.filter(digest=digest).values_list("size", flat=True).first()
    if not linked or size is None:
        raise NotFound(message="the artifact's blob is not in its repository")
    if size > limit:
        raise NotFound(message=f"the artifact's blob is larger than {limit} bytes")
    chunks = []
    with blob_store().open_blob(digest) as stream:
        while size > 0 and (chunk := stream.read(size)):
            chunks.append(chunk)
            size -= len(chunk)
    return b"".join(chunks)


# The files of a chart we read: <chart>/<name>, by lower-case name.
CHART_FILES = {"values.yaml", "readme.md", "chart.yaml", "requirements.yaml"}


def _chart_files(archive: bytes) -> dict[str, bytes]:
    """Top-level files of a chart archive (``<chart>/values.yaml``…), unpacked
    in memory no further than MAX_UNPACKED (a gzip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        tar_bytes = inflater.decompress(archive, MAX_UNPACKED + 1)
    except zlib.error:
        raise NotFound(message="the chart archive is not gzip") from None
    if len(tar_bytes) > MAX_UNPACKED:
        raise NotFound(message=f"the chart unpacks to more than {MAX_UNPACKED} bytes")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                parts = member.name.split("/")
                key = parts[-1].lower()
                if len(parts) != 2 or key not in CHART_FILES or not member.isfile():
                    continue
                if member.size > MAX_FILE:
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    files.setdefault(key, handle.read(MAX_FILE))
    except tarfile.TarError:
        raise NotFound(message="the chart archive is not a tar") from None
    return files


def _dependencies(files: dict[str, bytes]) -> list[dict[str, str]]:
    """Harbor's chart dependencies: name, version, repository of each entry of
    Chart.yaml's ``dependencies`` (API v2) or requirements.yaml's (API v1)."""
    for name in ("chart.yaml", "requirements.yaml"):
        try:
            doc = yaml.safe_load(files.get(name, b"")) or {}
        except yaml.YAMLError:
            continue
        entries = doc.get("dependencies") if isinstance(doc, dict) else None
        if isinstance(entries, list) and entries:
            return [
                {key: _scalar(entry.get(key)) for key in ("name", "version", "repository")}
                for entry in entries
                if isinstance(entry, dict)
            ]
    return []


def _scalar(value: Any) -> str:
    """A YAML scalar as text; anything else (an alias to a huge tree) is ""."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)[:1024]
    return ""
