"""The copy engine between real registries: Distribution (htpasswd) and a
live Berth (token service), judged by skopeo reading the copies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from replication.adapters.harbor import BerthAdapter
from replication.adapters.http import Auth, Unreachable
from replication.adapters.registry import RegistryAdapter
from replication.engine import Copier, Stopped
from tests.clients.skopeo import Skopeo
from tests.conftest import ADMIN, REPO_ROOT
from tests.registry.helpers import index, sha256
from tests.replication.conftest import DIST_USER, push_big_blob, push_referrer, remote

pytestmark = pytest.mark.live


def _name(prefix: str) -> str:
    return f"app/{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ends(distribution: Any, berth: Any) -> tuple[RegistryAdapter, BerthAdapter]:
    return (
        RegistryAdapter(distribution.url, auth=Auth(*DIST_USER)),
        BerthAdapter(berth.url, auth=Auth(*ADMIN)),
    )


def test_distribution_to_berth_and_back_verified_by_skopeo(
    distribution: Any, berth: Any, ends: Any, tmp_path: Any
) -> None:
    dist, berth_side = ends
    src_repo, mid_repo, back_repo = _name("src"), _name("mid"), _name("back")
    pusher = remote(distribution.url, DIST_USER)
    _, one = pusher.push_image(src_repo, "one", layers=[os.urandom(70_000), os.urandom(3000)])
    _, two = pusher.push_image(src_repo, "two")
    multi = index([one, two])
    assert (
        pusher.put_manifest(
            src_repo, "multi", multi, "application/vnd.oci.image.index.v1+json"
        ).status_code
        == 201
    )
    sbom = push_referrer(pusher, src_repo, one, tag_schema=True)

    lines: list[str] = []
    forward = Copier(src=dist, dst=berth_side, log=lines.append, chunk=32 * 1024)
    assert forward.copy(src_repo, mid_repo, ["one", "multi"])
    # Both images of the index, their blobs, the referrer's.
    assert forward.manifests_put >= 4

    skopeo = Skopeo(tmp_path / "skopeo")
    creds = ":".join(ADMIN)
    for tag, body in (("one", one), ("multi", multi)):
        raw = skopeo.inspect_raw(f"docker://{berth.addr}/{mid_repo}:{tag}", creds=creds)
        assert raw == body
    skopeo.copy(
        f"docker://{berth.addr}/{mid_repo}:multi", f"oci:{tmp_path / 'oci'}:multi", src_creds=creds
    )
    referrers = requests.get(
        f"{berth.url}/v2/{mid_repo}/referrers/{sha256(one)}", auth=ADMIN, timeout=30
    ).json()
    assert [m["digest"] for m in referrers["manifests"]] == [sbom]

    # A rerun with nothing new copies nothing.
    again = Copier(src=dist, dst=berth_side, log=lines.append)
    assert not again.copy(src_repo, mid_repo, ["one", "multi"])
    assert (again.bytes_copied, again.manifests_put, again.blobs_copied) == (0, 0, 0)

    back = Copier(src=berth_side, dst=dist, log=lines.append)
    assert back.copy(mid_repo, back_repo, ["multi"])
    raw = skopeo.inspect_raw(
        f"docker://{distribution.host}/{back_repo}:multi", creds=":".join(DIST_USER)
    )
    assert raw == multi


def test_same_registry_blobs_are_mounted_not_copied(berth: Any, ends: Any) -> None:
    _, berth_side = ends
    src_repo, dst_repo = _name("m-src"), _name("m-dst")
    remote(berth.url, ADMIN).push_image(src_repo, "v1", layers=[os.urandom(200_000)])
    copier = Copier(src=berth_side, dst=BerthAdapter(berth.url, auth=Auth(*ADMIN)), log=print)
    assert copier.copy(src_repo, dst_repo, ["v1"])
    assert copier.bytes_copied == 0
    assert copier.blobs_skipped == 2  # config and layer, mounted


class Flaky:
    """A real adapter whose first upload of a full chunk (``upload`` bytes)
    sends half its bytes and then fails as a dropped connection would, and
    whose first read of the blob ``read`` breaks after its first piece."""

    def __init__(self, real: Any, *, upload: int = 0, read: str = "") -> None:
        self.real = real
        self.upload_fault = upload
        self.read_fault = read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def upload_chunk(self, upload: Any, data: bytes) -> None:
        if self.upload_fault and len(data) == self.upload_fault:
            self.upload_fault = 0
            self.real.upload_chunk(upload, data[: len(data) // 2])
            upload.offset -= len(data) // 2  # the client never saw the answer
            raise Unreachable("connection reset by peer (injected)")
        self.real.upload_chunk(upload, data)

    @contextmanager
    def blob_read(self, repository: str, digest: str, *, offset: int = 0) -> Iterator[Any]:
        with self.real.blob_read(repository, digest, offset=offset) as pieces:
            if digest != self.read_fault:
                yield pieces
                return
            self.read_fault = ""

            def broken() -> Iterator[bytes]:
                yield next(pieces)
                raise requests.ConnectionError("stream broke (injected)")

            yield broken()


def test_a_broken_upload_resumes_from_the_acknowledged_range(
    distribution: Any, berth: Any, ends: Any
) -> None:
    dist, berth_side = ends
    src_repo, dst_repo = _name("r-src"), _name("r-dst")
    layer = os.urandom(3 * 1024 * 1024 + 17)
    remote(distribution.url, DIST_USER).push_image(src_repo, "v1", layers=[layer])
    lines: list[str] = []
    copier = Copier(
        src=Flaky(dist, read=sha256(layer)),
        dst=Flaky(berth_side, upload=1024 * 1024),
        log=lines.append,
        chunk=1024 * 1024,
        sleep=lambda s: None,
    )
    assert copier.copy(src_repo, dst_repo, ["v1"])
    text = "\n".join(lines)
    assert "resuming at 524288" in text  # half of the first chunk had arrived
    assert "broke at byte" in text
    with berth_side.blob_read(dst_repo, sha256(layer)) as pieces:
        assert sha256(b"".join(pieces)) == sha256(layer)


def test_a_stop_between_chunks_leaves_nothing_visible(distribution: Any, ends: Any) -> None:
    dist, berth_side = ends
    src_repo, dst_repo = _name("s-src"), _name("s-dst")
    layer = os.urandom(2 * 1024 * 1024)
    remote(distribution.url, DIST_USER).push_image(src_repo, "v1", layers=[layer])
    asked = iter([False, False, False, True])  # the manifest, config, first chunk, then stop
    copier = Copier(
        src=dist, dst=berth_side, log=print, chunk=256 * 1024, should_stop=lambda: next(asked)
    )
    with pytest.raises(Stopped):
        copier.copy(src_repo, dst_repo, ["v1"])
    assert berth_side.manifest_digest(dst_repo, "v1") is None
    assert not berth_side.blob_exists(dst_repo, sha256(layer))


def test_a_large_layer_streams_in_bounded_memory(
    distribution: Any, berth: Any, record_property: Any
) -> None:
    """Peak RSS of a process copying a large layer (256 MiB; BERTH_REPL_BIG_MIB
    for more) Distribution → Berth in 16 MiB chunks: bounded by the chunk, not
    the layer."""
    size = int(os.environ.get("BERTH_REPL_BIG_MIB", "256")) << 20
    src_repo, dst_repo = _name("big-src"), _name("big-dst")
    digest = push_big_blob(distribution.url, DIST_USER, src_repo, size)
    result = subprocess.run(
        [
            sys.executable, "-m", "tests.replication.copy_probe",
            distribution.url, *DIST_USER, berth.url, *ADMIN,
            src_repo, dst_repo, digest, str(size), str(16 << 20),
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    record_property("copy_maxrss_mib", probe["maxrss_kib"] // 1024)
    print(
        f"copied {size >> 20} MiB; peak RSS {probe['maxrss_kib'] // 1024} MiB "
        f"({probe['before_kib'] // 1024} MiB before the copy)"
    )
    assert probe["bytes"] == size
    # Growth while copying: a few chunks in flight, whatever the layer's size.
    assert (probe["maxrss_kib"] - probe["before_kib"]) * 1024 < 6 * (16 << 20)
    r = requests.head(f"{berth.url}/v2/{dst_repo}/blobs/{digest}", auth=ADMIN, timeout=30)
    assert (r.status_code, int(r.headers["Content-Length"])) == (200, size)
