"""Writes that race on PostgreSQL, where transactions run side by side (SQLite
runs one writer at a time: BEGIN IMMEDIATE and the process's write queue)."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connection

from registry.errors import Code, RegistryError
from registry.models import ManifestBlob, RepositoryBlob
from registry.services import manifests
from registry.services.blobs import blob_register, blob_unlink
from registry.services.manifests import PutResult, manifest_put

from .helpers import OCI_MANIFEST, image, sha256

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="on SQLite the two transactions cannot overlap (one writer at a time)",
    ),
]


def test_a_blob_unlink_waits_for_the_manifest_put_that_found_the_blob(test_projects, monkeypatch):
    """A manifest PUT has found its layer linked in the repository and not yet
    committed; a DELETE of that blob must not remove the link under it. It
    waits for the manifest, then refuses (IN_USE): every manifest's references
    keep existing."""
    layer = os.urandom(300)
    body, blobs = image(layers=[layer])
    for digest, data in blobs.items():
        blob_register(repository_name="a/race", digest=digest, size=len(data))

    found, release = threading.Event(), threading.Event()
    real = manifests._referenced_children

    def paused(repo_id, parsed):  # runs right after the links were read
        found.set()
        assert release.wait(30)
        return real(repo_id, parsed)

    monkeypatch.setattr(manifests, "_referenced_children", paused)
    outcome: dict[str, object] = {}

    def put() -> None:
        try:
            outcome["put"] = manifest_put(
                repository_name="a/race", reference="v1", body=body, content_type=OCI_MANIFEST
            )
        except Exception as error:
            outcome["put"] = error
        finally:
            connection.close()

    def unlink() -> None:
        try:
            blob_unlink(repository_name="a/race", digest=sha256(layer))
            outcome["unlink"] = "unlinked"
        except Exception as error:
            outcome["unlink"] = error
        finally:
            connection.close()

    putter = threading.Thread(target=put)
    putter.start()
    assert found.wait(30)
    unlinker = threading.Thread(target=unlink)
    unlinker.start()
    unlinker.join(timeout=2)
    assert unlinker.is_alive(), f"the unlink did not wait: {outcome.get('unlink')}"
    release.set()
    putter.join(timeout=30)
    unlinker.join(timeout=30)

    assert isinstance(outcome["put"], PutResult), outcome["put"]
    refused = outcome["unlink"]
    assert isinstance(refused, RegistryError) and refused.code == Code.IN_USE, refused
    link = RepositoryBlob.objects.filter(repository__name="a/race", blob__digest=sha256(layer))
    assert link.exists()
    assert ManifestBlob.objects.filter(
        manifest__repository__name="a/race", blob__digest=sha256(layer)
    ).exists()
