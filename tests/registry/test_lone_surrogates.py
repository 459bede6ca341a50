"""Issue 13, item 6: a JSON escape of a lone surrogate (``"\\ud800"``) is valid
JSON text but no Unicode string; a manifest carrying one was stored and then made
the repository's artifact list and the artifact answer 500 for everyone."""

from __future__ import annotations

import json

import pytest
from django.db import DataError, connection, transaction
from django.test import Client

from accounts.models import User
from registry.models import Manifest
from tests.registry.helpers import InProcess, image
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = "/api/v2.0/projects/team/repositories/app/artifacts"

# Rows "stored before the fix" exist only on SQLite: PostgreSQL's jsonb refuses
# a lone surrogate itself (test_postgresql_never_stored_one).
stored_before_the_fix = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL never stored such a row"
)


@pytest.mark.parametrize(
    "extra",
    [
        {"annotations": {"note": "\ud800"}},
        {"annotations": {"\udfff": "key"}},
        {"annotations": {"half a pair": "\ud83d"}},
        {"artifactType": "application/x\udc00"},
        {"x-extension": ["deep", {"in": "\ud800"}]},
    ],
)
def test_a_manifest_with_a_lone_surrogate_is_refused(team, v2, extra):
    reg = InProcess(v2)
    body, blobs = image(**extra)
    assert b"\\ud" in body.lower()  # the escape, as a client sends it
    for data in blobs.values():
        reg.put_blob("team/app", data)
    r = reg.put_manifest("team/app", "v1", body)
    assert r.status_code == 400, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "MANIFEST_INVALID"
    assert "surrogate" in error["message"]
    assert not Manifest.objects.exists()


def test_a_surrogate_pair_is_a_character_and_welcome(team, v2):
    reg = InProcess(v2)
    body = json.dumps(json.loads(image(annotations={"note": "\U0001f600"})[0]))
    assert "\\ud83d\\ude00" in body
    digest, _ = reg.push_image("team/app", "v1", annotations={"note": "\U0001f600"})
    r = api("admin").get(f"{ARTIFACTS}/{digest}")
    assert r.status_code == 200
    assert r.json()["annotations"] == {"note": "\U0001f600"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's own refusal")
def test_postgresql_never_stored_one(team, v2):
    digest, _ = InProcess(v2).push_image("team/app", "v1")
    with pytest.raises(DataError), transaction.atomic():
        Manifest.objects.filter(digest=digest).update(annotations={"note": "\ud800"})


@stored_before_the_fix
def test_reads_survive_a_surrogate_stored_before_the_fix(team, v2):
    """Rows written before the check: the listing and the artifact still answer,
    the surrogate escaped in the JSON they return."""
    reg = InProcess(v2)
    digest, _ = reg.push_image("team/app", "v1")
    Manifest.objects.filter(digest=digest).update(annotations={"note": "\ud800"})
    admin = api("admin")
    listing = admin.get(ARTIFACTS)
    assert listing.status_code == 200, listing.content
    assert listing.json()[0]["annotations"] == {"note": "\ud800"}
    assert b'"\\ud800"' in listing.content
    one = admin.get(f"{ARTIFACTS}/{digest}")
    assert one.status_code == 200
    assert one.json()["annotations"] == {"note": "\ud800"}
    assert admin.get("/api/v2.0/projects/team/repositories").status_code == 200
    assert reg.c.get("/v2/team/app/manifests/v1").status_code == 200


@stored_before_the_fix
def test_the_admin_shows_a_surrogate_stored_before_the_fix(team, v2):
    digest, _ = InProcess(v2).push_image("team/app", "v1")
    Manifest.objects.filter(digest=digest).update(annotations={"note": "\ud800"})
    staff = Client()
    staff.force_login(User.objects.get(username="admin"))
    pk = Manifest.objects.get(digest=digest).pk
    assert staff.get("/admin/registry/manifest/").status_code == 200
    r = staff.get(f"/admin/registry/manifest/{pk}/change/")
    assert r.status_code == 200
