"""OCI image layouts written and read by hand, and multi-arch indexes pushed
with skopeo."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.clients.base import (
    ClientError,
    _mkdir,
    sha256_digest,
)
from tests.clients.skopeo import Skopeo

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass
class OciImage:
    platform: str  # "os/arch[/variant]"
    manifest_digest: str
    manifest: bytes
    config_digest: str
    layer_digests: list[str]


@dataclass
class OciLayout:
    path: Path
    tag: str
    digest: str  # top-level index digest (or manifest digest when not an index)
    media_type: str
    raw: bytes  # exact bytes of the top-level index/manifest
    images: list[OciImage]
    blobs: dict[str, int] = field(default_factory=dict)  # every blob digest -> size

    @property
    def ref(self) -> str:
        """``oci:PATH:TAG`` for skopeo."""
        return f"oci:{self.path}:{self.tag}"

    @property
    def manifest_digests(self) -> list[str]:
        return [im.manifest_digest for im in self.images]


def _canonical_json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _tar_one_file(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_oci_layout(
    path: str | os.PathLike[str],
    *,
    tag: str = "latest",
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
    layers_per_image: int = 2,
    layer_size: int = 64 * 1024,
    shared_base_layer: bool = True,
    as_index: bool = True,
    index_annotations: Mapping[str, str] | None = None,
) -> OciLayout:
    """Write an OCI image layout at ``path`` by hand (json + hashlib).

    One image per entry of ``platforms`` ("os/arch[/variant]"), each with
    ``layers_per_image`` gzip'd tar layers of random content (the first layer
    is shared by all images when ``shared_base_layer``), plus an OCI image
    index referencing them with their platforms; ``index.json`` points at the
    index under the ref name ``tag``.  With ``as_index=False`` (one platform
    only) ``index.json`` points straight at the single manifest.

    Push with ``Skopeo.copy(layout.ref, 'docker://...', all=True,
    preserve_digests=True)``.
    """
    if not platforms:
        raise ValueError("need at least one platform")
    if not as_index and len(platforms) != 1:
        raise ValueError("as_index=False needs exactly one platform")
    root = _mkdir(path)
    blob_dir = _mkdir(root / "blobs" / "sha256")
    blobs: dict[str, int] = {}

    def put(data: bytes) -> tuple[str, int]:
        digest = sha256_digest(data)
        (blob_dir / digest.split(":", 1)[1]).write_bytes(data)
        blobs[digest] = len(data)
        return digest, len(data)

    def make_layer(name: str) -> tuple[dict[str, Any], str]:
        tar = _tar_one_file(name, os.urandom(layer_size))
        diff_id = sha256_digest(tar)
        gz = gzip.compress(tar, compresslevel=6, mtime=0)
        digest, size = put(gz)
        return {"mediaType": MT_OCI_LAYER_GZIP, "digest": digest, "size": size}, diff_id

    shared = make_layer("base.bin") if shared_base_layer and layers_per_image > 0 else None
    images: list[OciImage] = []
    descriptors: list[dict[str, Any]] = []
    for plat in platforms:
        parts = plat.split("/")
        os_name, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) > 2 else None
        layer_descs: list[dict[str, Any]] = []
        diff_ids: list[str] = []
        for i in range(layers_per_image):
            if i == 0 and shared is not None:
                desc, diff_id = shared
            else:
                desc, diff_id = make_layer(
                    f"{os_name}-{arch}{'-' + variant if variant else ''}-{i}.bin"
                )
            layer_descs.append(desc)
            diff_ids.append(diff_id)
        config: dict[str, Any] = {
            "created": "1970-01-01T00:00:00Z",
            "architecture": arch,
            "os": os_name,
            "config": {"Labels": {"berth.test.platform": plat}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth tests"}]
            * len(diff_ids),
        }
        if variant:
            config["variant"] = variant
        config_digest, config_size = put(_canonical_json(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layer_descs,
        }
        manifest_bytes = _canonical_json(manifest)
        m_digest, m_size = put(manifest_bytes)
        platform_doc = {"architecture": arch, "os": os_name}
        if variant:
            platform_doc["variant"] = variant
        descriptors.append(
            {
                "mediaType": MT_OCI_MANIFEST,
                "digest": m_digest,
                "size": m_size,
                "platform": platform_doc,
            }
        )
        images.append(
            OciImage(
                plat, m_digest, manifest_bytes, config_digest, [d["digest"] for d in layer_descs]
            )
        )

    if as_index:
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_INDEX,
            "manifests": descriptors,
        }
        if index_annotations:
            index["annotations"] = dict(index_annotations)
        raw = _canonical_json(index)
        top_digest, top_size = put(raw)
        media_type = MT_OCI_INDEX
    else:
        raw = images[0].manifest
        top_digest, top_size = images[0].manifest_digest, len(raw)
        media_type = MT_OCI_MANIFEST
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_bytes(
        _canonical_json(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": media_type,
                        "digest": top_digest,
                        "size": top_size,
                        "annotations": {REF_NAME_ANNOTATION: tag},
                    }
                ],
            }
        )
    )
    return OciLayout(root, tag, top_digest, media_type, raw, images, blobs)


def read_oci_layout(path: str | os.PathLike[str], tag: str | None = None) -> OciLayout:
    """Read back an OCI layout (e.g. one skopeo wrote) for comparisons.

    Picks the ``index.json`` entry whose ref name is ``tag`` (or the only
    entry).  Verifies every referenced blob's digest and size.
    """
    root = Path(path)
    top = json.loads((root / "index.json").read_bytes())
    entries = top.get("manifests", [])
    if tag is not None:
        entries = [
            e for e in entries if (e.get("annotations") or {}).get(REF_NAME_ANNOTATION) == tag
        ]
    if len(entries) != 1:
        raise ValueError(
            f"{root}: expected one index.json entry for tag {tag!r}, got {len(entries)}"
        )
    entry = entries[0]
    blobs: dict[str, int] = {}

    def get(desc: Mapping[str, object]) -> bytes:
        digest = str(desc["digest"])
        data = (root / "blobs" / digest.replace(":", "/", 1)).read_bytes()
        if sha256_digest(data) != digest or len(data) != int(desc["size"]):  # type: ignore[call-overload]
            raise ValueError(f"{root}: blob {digest} does not match its descriptor")
        blobs[digest] = len(data)
        return data

    def image(desc: Mapping[str, object], plat: str) -> OciImage:
        raw = get(desc)
        man = json.loads(raw)
        get(man["config"])
        layers = [str(layer["digest"]) for layer in man["layers"]]
        for layer in man["layers"]:
            get(layer)
        return OciImage(plat, str(desc["digest"]), raw, str(man["config"]["digest"]), layers)

    raw = get(entry)
    doc = json.loads(raw)
    media_type = str(entry.get("mediaType") or doc.get("mediaType") or "")
    images: list[OciImage] = []
    if "manifests" in doc:
        for desc in doc["manifests"]:
            p = desc.get("platform") or {}
            plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            images.append(image(desc, plat))
    else:
        images.append(image(entry, ""))
    tag_name = (entry.get("annotations") or {}).get(REF_NAME_ANNOTATION, tag or "")
    return OciLayout(root, tag_name, str(entry["digest"]), media_type, raw, images, blobs)


def push_multiarch_index(
    registry: str,
    repo: str,
    tag: str,
    workdir: str | os.PathLike[str],
    *,
    skopeo: Skopeo | None = None,
    creds: str | None = None,
    **layout_kwargs: object,
) -> OciLayout:
    """Write a two-platform OCI layout under ``workdir`` and push it.

    ``skopeo copy --all --preserve-digests oci:DIR:TAG docker://REGISTRY/REPO:TAG``
    (plain HTTP).  Returns the layout; its ``digest`` is the index digest the
    registry must now serve for ``REPO:TAG``.
    """
    layout_dir = Path(tempfile.mkdtemp(prefix="oci-", dir=_mkdir(workdir)))
    layout = write_oci_layout(layout_dir, tag=tag, **layout_kwargs)  # type: ignore[arg-type]
    sk = skopeo or Skopeo(Path(workdir) / "skopeo")
    pushed = sk.copy(
        layout.ref,
        f"docker://{registry}/{repo}:{tag}",
        all=True,
        preserve_digests=True,
        dest_creds=creds,
    )
    if pushed != layout.digest:
        raise ClientError(
            ["skopeo", "copy"],
            0,
            message=f"pushed digest {pushed} != layout digest {layout.digest}",
        )
    return layout
