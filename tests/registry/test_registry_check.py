"""registry_check finds what is wrong, and passes when nothing is."""

from __future__ import annotations

import os

import pytest
from django.core.management import CommandError, call_command

from registry.models import Manifest, Tag
from registry.services.check import registry_check

from .helpers import InProcess, sha256


@pytest.fixture
def reg(v2) -> InProcess:
    return InProcess(v2)


def blob_path(tmp_path, digest: str):
    hexpart = digest.split(":", 1)[1]
    return tmp_path / "registry" / "blobs" / "sha256" / hexpart[:2] / hexpart


def test_clean_registry_passes(reg, capsys):
    reg.push_image("chk/ok", "v1")
    call_command("registry_check")
    assert "ok: 2 blobs hashed, 1 manifests, 1 tags: 0 errors" in capsys.readouterr().out


def test_flipped_byte_is_found(reg, tmp_path):
    layer = os.urandom(1000)
    reg.push_image("chk/flip", "v1", layers=[layer])
    path = blob_path(tmp_path, sha256(layer))
    raw = bytearray(path.read_bytes())
    raw[500] ^= 0xFF
    path.write_bytes(bytes(raw))
    report = registry_check()
    assert report.errors == [f"blob {sha256(layer)}: bytes do not hash to the digest"]
    with pytest.raises(CommandError):
        call_command("registry_check")


def test_sampling_still_checks_sizes(reg, tmp_path):
    layer = os.urandom(1000)
    reg.push_image("chk/size", "v1", layers=[layer])
    blob_path(tmp_path, sha256(layer)).write_bytes(layer[:10])
    report = registry_check(sample=0.0)
    assert report.blobs_hashed == 0
    assert report.errors == [f"blob {sha256(layer)}: 10 bytes stored, 1000 recorded"]


def test_missing_bytes_and_stray_files(reg, tmp_path):
    layer = os.urandom(100)
    reg.push_image("chk/missing", "v1", layers=[layer])
    blob_path(tmp_path, sha256(layer)).unlink()
    stray = b"no row for me"
    stray_path = blob_path(tmp_path, sha256(stray))
    stray_path.parent.mkdir(parents=True, exist_ok=True)
    stray_path.write_bytes(stray)
    report = registry_check()
    assert report.errors == [f"blob {sha256(layer)}: bytes missing from storage"]
    assert report.warnings == [f"stored bytes {sha256(stray)} have no blob row (left for GC)"]


def test_corrupt_manifest_row_and_cross_repository_tag(reg):
    digest, _ = reg.push_image("chk/m", "v1")
    _, _ = reg.push_image("chk/other", "v1")
    Manifest.objects.filter(digest=digest).update(payload=b'{"schemaVersion": 2}')
    Tag.objects.filter(repository__name="chk/other").update(
        manifest=Manifest.objects.get(digest=digest)
    )
    errors = registry_check().errors
    assert f"manifest chk/m@{digest}: bytes do not hash to the digest" in errors
    assert "tag chk/other:v1: points into another repository" in errors
