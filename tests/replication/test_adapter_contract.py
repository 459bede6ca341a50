"""One contract, every adapter, each against a real registry: Distribution
(htpasswd Basic), a live Berth through Harbor's API and its token service, the
same Berth as a registry without a catalog (repositories named by the policy),
and this Berth in-process through its services (the local side of every copy).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from replication.adapters.base import Manifest, NotFound
from replication.adapters.harbor import BerthAdapter
from replication.adapters.http import Auth, Denied
from replication.adapters.registry import NoCatalogAdapter, RegistryAdapter
from tests.conftest import ADMIN
from tests.registry.helpers import InProcess, image, index, sha256
from tests.replication.conftest import DIST_USER, push_referrer, remote


@dataclass
class Side:
    adapter: Any
    pusher: Any
    tag_schema: bool  # the registry has no referrers API
    bad: Any = None  # the adapter with a wrong password (None: no credentials to refuse)
    lists: bool = True


def _distribution(request: pytest.FixtureRequest) -> Side:
    reg = request.getfixturevalue("distribution")
    return Side(
        RegistryAdapter(reg.url, auth=Auth(*DIST_USER)),
        remote(reg.url, DIST_USER),
        tag_schema=True,
        bad=RegistryAdapter(reg.url, auth=Auth(DIST_USER[0], "wrong")),
    )


class TokenPusher:
    """Pushes to a token-auth Distribution through the docker-registry adapter
    (a Bearer token per scope): requests' Basic auth would be refused."""

    def __init__(self, adapter: RegistryAdapter) -> None:
        self.adapter = adapter

    def put_blob(self, name: str, data: bytes) -> str:
        upload = self.adapter.upload_start(name)
        self.adapter.upload_chunk(upload, data)
        self.adapter.upload_finish(upload, sha256(data))
        return sha256(data)

    def put_manifest(self, name: str, ref: str, body: bytes, media_type: str = "") -> Any:
        from types import SimpleNamespace

        media_type = media_type or "application/vnd.oci.image.manifest.v1+json"
        self.adapter.manifest_put(name, ref, Manifest(body, media_type, sha256(body)))
        return SimpleNamespace(status_code=201, text="")

    def push_image(self, name: str, tag: str, **kw: Any) -> tuple[str, bytes]:
        return self.push(name, tag, *image(**kw))

    def push(self, name: str, ref: str, body: bytes, blobs: dict[str, bytes]) -> tuple[str, bytes]:
        for data in blobs.values():
            self.put_blob(name, data)
        self.put_manifest(name, ref, body)
        return sha256(body), body


def _token_distribution(request: pytest.FixtureRequest) -> Side:
    reg, _ = request.getfixturevalue("token_distribution")
    adapter = RegistryAdapter(reg.url, auth=Auth(*DIST_USER))
    return Side(
        adapter,
        TokenPusher(RegistryAdapter(reg.url, auth=Auth(*DIST_USER))),
        tag_schema=True,
        bad=RegistryAdapter(reg.url, auth=Auth(DIST_USER[0], "wrong")),
    )


def _berth(request: pytest.FixtureRequest) -> Side:
    server = request.getfixturevalue("berth")
    return Side(
        BerthAdapter(server.url, auth=Auth(*ADMIN)),
        remote(server.url, ADMIN),
        tag_schema=False,
        bad=BerthAdapter(server.url, auth=Auth(ADMIN[0], "wrong")),
    )


def _no_catalog(request: pytest.FixtureRequest) -> Side:
    server = request.getfixturevalue("berth")
    return Side(
        NoCatalogAdapter(server.url, auth=Auth(*ADMIN)),
        remote(server.url, ADMIN),
        tag_schema=False,
        bad=NoCatalogAdapter(server.url, auth=Auth(ADMIN[0], "wrong")),
        lists=False,
    )


def _local(request: pytest.FixtureRequest) -> Side:
    from replication.adapters.local import LocalAdapter

    return Side(LocalAdapter(), InProcess(request.getfixturevalue("v2")), tag_schema=False)


SIDES = {
    "distribution": _distribution,
    "token-distribution": _token_distribution,
    "berth": _berth,
    "no-catalog": _no_catalog,
    "local": _local,
}


@pytest.fixture(
    params=[
        pytest.param("distribution", marks=pytest.mark.live),
        pytest.param("token-distribution", marks=pytest.mark.live),
        pytest.param("berth", marks=pytest.mark.live),
        pytest.param("no-catalog", marks=pytest.mark.live),
        pytest.param("local", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def side(request: pytest.FixtureRequest) -> Side:
    return SIDES[request.param](request)


def _repo() -> str:
    return f"app/contract-{uuid.uuid4().hex[:8]}"


def test_ping_accepts_the_credentials_and_refuses_wrong_ones(side: Side) -> None:
    side.adapter.ping()
    if side.bad is not None:
        with pytest.raises(Denied):
            side.bad.ping()


def test_lists_repositories_and_artifacts_with_their_tags(side: Side) -> None:
    repo = _repo()
    digest, _ = side.pusher.push_image(repo, "v1")
    side.pusher.put_manifest(repo, "latest", side.adapter.manifest_get(repo, "v1").body)
    other, _ = side.pusher.push_image(repo, "v2")

    if side.lists:
        assert repo in side.adapter.repositories()
    assert side.adapter.repositories(named=[repo, "app/absent-x"]) == [repo]
    found = {a.digest: a.tags for a in side.adapter.artifacts(repo)}
    assert found == {digest: ("latest", "v1"), other: ("v2",)}


def test_manifests_by_tag_and_digest(side: Side) -> None:
    repo = _repo()
    digest, body = side.pusher.push_image(repo, "v1")
    assert side.adapter.manifest_digest(repo, "v1") == digest
    assert side.adapter.manifest_digest(repo, digest) == digest
    assert side.adapter.manifest_digest(repo, "nope") is None
    got = side.adapter.manifest_get(repo, digest)
    assert (got.body, got.digest, got.media_type) == (
        body,
        digest,
        "application/vnd.oci.image.manifest.v1+json",
    )
    with pytest.raises(NotFound):
        side.adapter.manifest_get(repo, "nope")

    side.adapter.manifest_put(repo, "copy", got)
    assert side.adapter.manifest_digest(repo, "copy") == digest
    side.adapter.manifest_delete(repo, digest)
    assert side.adapter.manifest_digest(repo, digest) is None
    side.adapter.manifest_delete(repo, digest)  # gone already: nothing to do


def test_an_index_is_put_after_its_children(side: Side) -> None:
    repo = _repo()
    _, body_a = side.pusher.push_image(repo, "a")
    _, body_b = side.pusher.push_image(repo, "b")
    raw = index([body_a, body_b])
    side.adapter.manifest_put(
        repo, "multi", Manifest(raw, "application/vnd.oci.image.index.v1+json", sha256(raw))
    )
    assert side.adapter.manifest_digest(repo, "multi") == sha256(raw)


def test_blobs_stream_from_an_offset_and_upload_in_chunks(side: Side) -> None:
    repo = _repo()
    layer = os.urandom(300_000)
    side.pusher.push_image(repo, "v1", layers=[layer])
    digest = sha256(layer)
    assert side.adapter.blob_exists(repo, digest)
    assert not side.adapter.blob_exists(repo, sha256(b"absent"))
    with side.adapter.blob_read(repo, digest) as pieces:
        assert b"".join(pieces) == layer
    with side.adapter.blob_read(repo, digest, offset=123_456) as pieces:
        assert b"".join(pieces) == layer[123_456:]

    data = os.urandom(250_000)
    upload = side.adapter.upload_start(repo)
    side.adapter.upload_chunk(upload, data[:100_000])
    assert side.adapter.upload_offset(upload) == 100_000
    side.adapter.upload_chunk(upload, data[100_000:])
    assert side.adapter.upload_offset(upload) == 250_000
    side.adapter.upload_finish(upload, sha256(data))
    assert side.adapter.blob_exists(repo, sha256(data))
    with side.adapter.blob_read(repo, sha256(data)) as pieces:
        assert b"".join(pieces) == data


def test_a_wrong_digest_is_refused_at_the_end_of_an_upload(side: Side) -> None:
    repo = _repo()
    side.pusher.push_image(repo, "v1")
    upload = side.adapter.upload_start(repo)
    side.adapter.upload_chunk(upload, b"some bytes")
    with pytest.raises(Exception, match=r"(?i)digest|400"):
        side.adapter.upload_finish(upload, sha256(b"other bytes"))
    assert not side.adapter.blob_exists(repo, sha256(b"other bytes"))


def test_referrers_of_a_subject(side: Side) -> None:
    repo = _repo()
    subject, body = side.pusher.push_image(repo, "v1")
    assert side.adapter.referrers(repo, subject) == []
    sbom = push_referrer(side.pusher, repo, body, tag_schema=side.tag_schema)
    assert side.adapter.referrers(repo, subject) == [sbom]


def test_mount_links_a_blob_of_another_repository(side: Side) -> None:
    source, target = _repo(), _repo()
    layer = os.urandom(5000)
    side.pusher.push_image(source, "v1", layers=[layer])
    side.pusher.push_image(target, "v1")
    assert side.adapter.blob_mount(target, sha256(layer), source)
    assert side.adapter.blob_exists(target, sha256(layer))
    assert not side.adapter.blob_mount(target, sha256(b"nowhere"), source)


__all__ = ["image"]


@pytest.mark.live
def test_bearer_tokens_are_fetched_once_per_scope(token_distribution: Any) -> None:
    registry, realm = token_distribution
    seeder = TokenPusher(RegistryAdapter(registry.url, auth=Auth(*DIST_USER)))
    repo = _repo()
    digest, _ = seeder.push_image(repo, "v1")
    adapter = RegistryAdapter(registry.url, auth=Auth(*DIST_USER))
    before = realm.issued
    assert adapter.manifest_digest(repo, "v1") == digest
    assert adapter.artifacts(repo)[0].digest == digest
    assert adapter.blob_exists(repo, digest) is False  # a manifest is no blob
    assert realm.issued == before + 1  # one pull token served all three
    adapter.upload_start(repo)
    assert realm.issued == before + 2  # pushing is another scope
