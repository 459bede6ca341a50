"""Real clients against a live Berth: docker, podman, containerd's ctr, skopeo,
oras and the OCI distribution-spec conformance suite.

The Go tools are built by tests/peers/build-go-peers.sh (run by .ci/run and the
Makefile's test target); docker, podman, ctr and skopeo come from Debian.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.clients import (
    ContainerdDaemon,
    DockerDaemon,
    Podman,
    Skopeo,
    build_scratch_image,
    push_multiarch_index,
    read_oci_layout,
    run_cmd,
)
from tests.conftest import ADMIN, ADMIN_PASSWORD

pytestmark = pytest.mark.clients

REPO_ROOT = Path(__file__).resolve().parent.parent
CREDS = f"admin:{ADMIN_PASSWORD}"
PEERS = Path(os.environ.get("BERTH_PEERS_BIN", REPO_ROOT / ".peers" / "bin"))


def peer(name: str) -> str:
    path = PEERS / name
    assert path.is_file(), f"{path} missing: run tests/peers/build-go-peers.sh"
    return str(path)


@pytest.fixture(scope="module")
def docker_image(berth, tmp_path_factory):
    """A 3-layer image built FROM scratch, pushed to Berth by docker."""
    tmp = tmp_path_factory.mktemp("docker")
    daemon = DockerDaemon().start(tmp / "daemon")
    try:
        ref = f"{berth.addr}/library/scratch-app:v1"
        daemon.login(berth.addr, *ADMIN)
        image_id = build_scratch_image(daemon, ref, tmp / "build", layers=3)
        digest = daemon.push(ref)
        yield daemon, ref, image_id, digest
    finally:
        daemon.stop()


def test_docker_push_rmi_pull_same_image(berth, docker_image):
    daemon, ref, image_id, digest = docker_image
    r = berth.http.get(
        f"{berth.url}/v2/library/scratch-app/manifests/v1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == digest
    assert len(r.json()["layers"]) == 3
    daemon.rmi(ref, force=True)
    assert not daemon.image_exists(ref)
    assert daemon.pull(ref) == image_id
    # A second push of the same image finds every layer present.
    assert daemon.push(ref) == digest


def test_podman_and_ctr_pull_docker_image(berth, docker_image, tmp_path):
    """Anonymous pulls from the public project `library` (401 challenge, then an
    anonymous token), as Kubernetes nodes without pull secrets do."""
    _, ref, image_id, digest = docker_image
    podman = Podman(tmp_path / "podman")
    try:
        pulled = podman.pull(ref)
        assert pulled.image_id == image_id
        assert pulled.digest == digest
    finally:
        podman.stop()
    with ContainerdDaemon().start(tmp_path / "containerd") as containerd:
        pulled = containerd.pull(ref)
        assert pulled.digest == digest


def test_skopeo_multiarch_index_round_trip(berth, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo")
    try:
        layout = push_multiarch_index(
            berth.addr, "multi/arch", "v1", tmp_path / "in", skopeo=skopeo, creds=CREDS
        )
        raw = skopeo.inspect_raw(f"docker://{berth.addr}/multi/arch:v1", creds=CREDS)
        assert raw == layout.raw
        out = tmp_path / "out"
        skopeo.copy(
            f"docker://{berth.addr}/multi/arch:v1",
            f"oci:{out}:v1",
            preserve_digests=True,
            src_creds=CREDS,
        )
        back = read_oci_layout(out, "v1")
        assert back.digest == layout.digest
        assert back.manifest_digests == layout.manifest_digests
        assert back.blobs == layout.blobs
    finally:
        skopeo.stop()
    tags = berth.http.get(f"{berth.url}/v2/multi/arch/tags/list").json()["tags"]
    assert tags == ["v1"]


def test_podman_pulls_platform_from_index(berth, tmp_path):
    skopeo = Skopeo(tmp_path / "skopeo")
    try:
        layout = push_multiarch_index(
            berth.addr, "multi/platform", "v1", tmp_path / "in", skopeo=skopeo, creds=CREDS
        )
    finally:
        skopeo.stop()
    arm = next(im for im in layout.images if im.platform == "linux/arm64")
    podman = Podman(tmp_path / "podman")
    try:
        pulled = podman.pull(f"{berth.addr}/multi/platform:v1", platform="linux/arm64", creds=CREDS)
        assert pulled.image_id == arm.config_digest
    finally:
        podman.stop()


def test_oras_artifact_referrer_discover(berth, tmp_path):
    oras = peer("oras")
    (tmp_path / "artifact.txt").write_text("hello from oras\n")
    (tmp_path / "sig.json").write_text('{"signed": true}\n')
    ref = f"{berth.addr}/artifacts/demo:v1"
    common = ["--plain-http", "-u", ADMIN[0], "-p", ADMIN[1]]
    run_cmd(
        [
            oras,
            "push",
            *common,
            "--artifact-type",
            "application/vnd.example.thing",
            ref,
            "artifact.txt:text/plain",
        ],
        cwd=str(tmp_path),
    )
    run_cmd(
        [
            oras,
            "attach",
            *common,
            "--distribution-spec",
            "v1.1-referrers-api",
            "--artifact-type",
            "application/vnd.example.signature",
            ref,
            "sig.json:application/json",
        ],
        cwd=str(tmp_path),
    )
    out = run_cmd(
        [
            oras,
            "discover",
            *common,
            "--distribution-spec",
            "v1.1-referrers-api",
            "--format",
            "json",
            ref,
        ]
    ).stdout
    found = json.loads(out)
    referrers = found.get("referrers") or found.get("manifests")
    assert [m["artifactType"] for m in referrers] == ["application/vnd.example.signature"]
    manifest = berth.http.get(
        f"{berth.url}/v2/artifacts/demo/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert manifest.json()["artifactType"] == "application/vnd.example.thing"
    subject = manifest.headers["Docker-Content-Digest"]
    listed = berth.http.get(f"{berth.url}/v2/artifacts/demo/referrers/{subject}").json()
    assert [m["artifactType"] for m in listed["manifests"]] == ["application/vnd.example.signature"]
    pulled = tmp_path / "pulled"
    run_cmd([oras, "pull", *common, "-o", str(pulled), ref])
    assert (pulled / "artifact.txt").read_text() == "hello from oras\n"


# The ginkgo suite the module proxy still serves is commit f2182352d4cc
# (2023-11-01), a main snapshot before v1.1.0 (tests/peers/build-go-peers.sh).
# Its "Content Discovery Teardown: Delete layer blob created in setup" deletes
# the layer blob while the subject manifest that references it (manifests[4])
# still exists -- it is only deleted later, in "References teardown". Berth
# refuses that with 409 (a blob referenced by a manifest of the repository is
# not unlinked: registry/services/blobs.py blob_unlink), and that step accepts
# only 2xx/405. Upstream fixed the order before v1.1.1 (the manifests,
# manifests[4] included, are deleted first), so that one teardown step is
# skipped here; every conformance check still runs.
GINKGO_SUITE_SKIP = r"Content Discovery Teardown Delete layer blob created in setup"


def test_oci_conformance_suite_ginkgo(berth, tmp_path):
    env = {
        **os.environ,
        "OCI_ROOT_URL": berth.url,
        "OCI_USERNAME": ADMIN[0],
        "OCI_PASSWORD": ADMIN[1],
        "OCI_NAMESPACE": "conformance/repo1",
        "OCI_CROSSMOUNT_NAMESPACE": "conformance/repo2",
        "OCI_AUTOMATIC_CROSSMOUNT": "1",
        "OCI_TEST_PULL": "1",
        "OCI_TEST_PUSH": "1",
        "OCI_TEST_CONTENT_DISCOVERY": "1",
        "OCI_TEST_CONTENT_MANAGEMENT": "1",
        "OCI_HIDE_SKIPPED_WORKFLOWS": "0",
        "OCI_DEBUG": "0",
        "OCI_REPORT_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [peer("conformance.test"), "-ginkgo.no-color", f"-ginkgo.skip={GINKGO_SUITE_SKIP}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = [line for line in result.stdout.splitlines() if "Passed" in line]
    assert result.returncode == 0, result.stdout[-5000:]
    assert summary and "0 Failed" in summary[-1]
    passed = int(summary[-1].split("--")[1].split("Passed")[0].strip())
    # 79 specs: 4 skipped by the configuration (env-provided content, the
    # nonexistent-blob mount, mount-without-from expecting 202) + the one above.
    assert passed >= 74


def test_oci_conformance_suite_main(berth, tmp_path):
    """The redesigned suite (distribution-spec main), with the optional tag
    parameter and upload-cancel APIs turned on. Sparse indexes stay off: Berth
    requires every child of an index to be present (documented choice)."""
    env = {
        **os.environ,
        "OCI_REGISTRY": berth.addr,
        "OCI_USERNAME": ADMIN[0],
        "OCI_PASSWORD": ADMIN[1],
        "OCI_TLS": "disabled",
        "OCI_REPO1": "conformance-main/repo1",
        "OCI_REPO2": "conformance-main/repo2",
        "OCI_VERSION": "1.1",
        "OCI_API_MANIFESTS_TAG_PARAM": "true",
        "OCI_API_BLOBS_UPLOAD_CANCEL": "true",
        "OCI_RESULTS_DIR": str(tmp_path / "results"),
    }
    result = subprocess.run(
        [peer("conformance-main")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    counts = dict(re.findall(r"^\s*(Pass|FAIL|Skip)\.+:\s+(\d+)$", result.stdout, re.M))
    assert counts["FAIL"] == "0"
    assert int(counts["Pass"]) >= 900
