"""Manifest and tag lookups come from the cache and never outlive a write."""

from __future__ import annotations

import pytest
from django.test import Client

from registry.services import cache
from registry.services.manifests import manifest_get
from tests.conftest import ADMIN, basic

from .helpers import InProcess


@pytest.fixture
def reg(v2) -> InProcess:
    return InProcess(v2)


def test_repeated_get_by_tag_with_a_token_makes_no_query(v2, reg, django_assert_num_queries):
    """The path docker takes: a Bearer token (verified once, then cached; its
    principal checked once per BERTH_PRINCIPAL_RECHECK_SECONDS) and a cached
    manifest lookup: no database query at all."""
    digest, body = reg.push_image("cache/hit", "v1")
    token = Client(HTTP_AUTHORIZATION=basic(*ADMIN)).get(
        "/service/token?service=harbor-registry&scope=repository:cache/hit:pull"
    )
    bearer = {"HTTP_AUTHORIZATION": "Bearer " + token.json()["token"]}
    with django_assert_num_queries(2):  # is the admin still enabled; the manifest
        assert v2.get("/v2/cache/hit/manifests/v1", **bearer).content == body
    with django_assert_num_queries(0):
        assert v2.get("/v2/cache/hit/manifests/v1", **bearer).content == body
        assert v2.head("/v2/cache/hit/manifests/v1", **bearer)["Docker-Content-Digest"] == digest


def test_retag_is_seen_at_once(v2, reg):
    reg.push_image("cache/retag", "v1")
    v2.get("/v2/cache/retag/manifests/v1")
    new_digest, new_body = reg.push_image("cache/retag", "v1")
    r = v2.get("/v2/cache/retag/manifests/v1")
    assert r["Docker-Content-Digest"] == new_digest
    assert r.content == new_body


def test_deleted_manifest_and_tag_stay_deleted(v2, reg):
    digest, _ = reg.push_image("cache/del", "v1")
    reg.push_image("cache/del", "v2")
    assert v2.get(f"/v2/cache/del/manifests/{digest}").status_code == 200
    assert v2.get("/v2/cache/del/manifests/v2").status_code == 200
    assert v2.delete("/v2/cache/del/manifests/v2").status_code == 202
    assert v2.get("/v2/cache/del/manifests/v2").status_code == 404
    assert v2.delete(f"/v2/cache/del/manifests/{digest}").status_code == 202
    assert v2.get(f"/v2/cache/del/manifests/{digest}").status_code == 404
    assert v2.get("/v2/cache/del/manifests/v1").status_code == 404


def test_reader_racing_a_write_cannot_store_a_stale_answer(v2, reg):
    reg.push_image("cache/race", "v1")
    # A reader misses, reads the generation and the database...
    slot, _ = cache.find("cache/race", "v1")
    stale = manifest_get(repository_name="cache/race", reference="v1")
    cache._cache().clear()
    # ...a push retags v1 and commits...
    new_digest, _ = reg.push_image("cache/race", "v1")
    # ...then the slow reader stores what it read.
    cache.put(slot, stale)
    assert manifest_get(repository_name="cache/race", reference="v1").digest == new_digest
