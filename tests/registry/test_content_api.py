"""Harbor's repository, artifact and tag API over Berth's content."""

from __future__ import annotations

import json

import pytest

from registry.models import Manifest, Repository, Tag
from tests.registry.helpers import InProcess, index
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def content(team, v2):
    reg = InProcess(v2)
    app_v1, _ = reg.push_image("team/app", "v1")
    app_v2, _ = reg.push_image("team/app", "v2")
    nested, _ = reg.push_image("team/group/nested", "latest")
    return {"v1": app_v1, "v2": app_v2, "nested": nested, "reg": reg}


def test_repositories_and_artifacts(content):
    guest = api("guest")
    repos = guest.get("/api/v2.0/projects/team/repositories").json()
    assert [(r["name"], r["artifact_count"]) for r in repos] == [
        ("team/app", 2),
        ("team/group/nested", 1),
    ]
    for encoded in ("group%2Fnested", "group%252Fnested"):
        r = guest.get(f"/api/v2.0/projects/team/repositories/{encoded}")
        assert r.status_code == 200
        assert r.json()["name"] == "team/group/nested"
    arts = guest.get("/api/v2.0/projects/team/repositories/app/artifacts").json()
    assert [a["digest"] for a in arts] == [content["v2"], content["v1"]]
    assert arts[0]["tags"][0]["name"] == "v2"
    assert arts[0]["type"] == "IMAGE"
    assert arts[0]["repository_name"] == "team/app"
    one = guest.get("/api/v2.0/projects/team/repositories/app/artifacts/v1").json()
    assert one["digest"] == content["v1"]
    by_digest = guest.get(f"/api/v2.0/projects/team/repositories/app/artifacts/{content['v1']}")
    assert by_digest.json()["id"] == one["id"]
    assert guest.get("/api/v2.0/projects/team/repositories/app/artifacts/nope").status_code == 404
    assert api("outsider").get("/api/v2.0/projects/team/repositories").status_code == 404
    assert [r["name"] for r in api("outsider").get("/api/v2.0/repositories").json()] == []


def test_artifact_list_has_no_n_plus_one(content, django_assert_max_num_queries):
    for i in range(6):
        content["reg"].push_image("team/app", f"extra{i}")
    with django_assert_max_num_queries(12):
        r = api("admin").get("/api/v2.0/projects/team/repositories/app/artifacts?page_size=20")
    assert len(r.json()) == 8


def test_tags_create_list_delete_by_role(content):
    base = "/api/v2.0/projects/team/repositories/app/artifacts/v1/tags"
    r = api("guest").post(
        base, data=json.dumps({"name": "stable"}), content_type="application/json"
    )
    assert r.status_code == 403
    r = api("dev").post(base, data=json.dumps({"name": "stable"}), content_type="application/json")
    assert r.status_code == 201
    assert Tag.objects.filter(name="stable", manifest__digest=content["v1"]).exists()
    assert [t["name"] for t in api("guest").get(base).json()] == ["stable", "v1"]
    dup = api("dev").post(base, data=json.dumps({"name": "v2"}), content_type="application/json")
    assert dup.status_code == 409
    assert api("dev").delete(f"{base}/stable").status_code == 403  # developers cannot delete tags
    assert api("maint").delete(f"{base}/stable").status_code == 200
    assert not Tag.objects.filter(name="stable").exists()
    # The registry sees the change at once (the cache is invalidated).
    assert content["reg"].c.get("/v2/team/app/manifests/stable").status_code == 404


def test_artifact_delete_needs_maintainer(content):
    url = f"/api/v2.0/projects/team/repositories/app/artifacts/{content['v1']}"
    assert api("dev").delete(url).status_code == 403
    assert api("maint").delete(url).status_code == 200
    assert not Manifest.objects.filter(digest=content["v1"]).exists()


def test_index_children_are_protected(content):
    reg = content["reg"]
    child = reg.c.get("/v2/team/app/manifests/v1").content
    r = reg.put_manifest(
        "team/app", "multi", index([child]), "application/vnd.oci.image.index.v1+json"
    )
    assert r.status_code == 201
    url = f"/api/v2.0/projects/team/repositories/app/artifacts/{content['v1']}"
    r = api("admin").delete(url)
    assert r.status_code == 409
    assert r.json()["errors"][0]["code"] == "CONFLICT"


def test_copy_between_projects_needs_read_on_source(content):
    mine = api("outsider").post(
        "/api/v2.0/projects",
        data=json.dumps({"project_name": "mine"}),
        content_type="application/json",
    )
    assert mine.status_code == 201
    steal = "/api/v2.0/projects/mine/repositories/stolen/artifacts?from=team/app:v1"
    assert api("outsider").post(steal).status_code == 404
    assert not Repository.objects.filter(name="mine/stolen").exists()
    assert api("outsider").post(steal.replace("team/app", "pub/none")).status_code == 404
    url = "/api/v2.0/projects/pub/repositories/copied/artifacts?from=team/app:v1"
    r = api("admin").post(url)
    assert r.status_code == 201
    copied = Manifest.objects.get(repository__name="pub/copied")
    assert copied.digest == content["v1"]
    assert Tag.objects.filter(repository__name="pub/copied", name="v1").exists()
    reg = content["reg"]
    layer = json.loads(reg.c.get("/v2/pub/copied/manifests/v1").content)["layers"][0]["digest"]
    assert reg.c.head(f"/v2/pub/copied/blobs/{layer}").status_code == 200


def test_repository_delete_and_description(content):
    url = "/api/v2.0/projects/team/repositories/app"
    assert (
        api("padmin")
        .put(url, data=json.dumps({"description": "the app"}), content_type="application/json")
        .status_code
        == 200
    )
    assert Repository.objects.get(name="team/app").description == "the app"
    assert api("dev").delete(url).status_code == 403
    assert api("padmin").delete(url).status_code == 200
    assert not Repository.objects.filter(name="team/app").exists()
    assert content["reg"].c.get("/v2/team/app/tags/list").status_code == 404


def test_every_content_change_is_audited_with_its_actor(content):
    """The services write the audit record in the change's transaction (an
    artifact delete through its durable event); a refused change leaves none."""
    from audit.models import AuditEvent
    from kit import events

    base = "/api/v2.0/projects/team/repositories/app"
    tags = f"{base}/artifacts/v1/tags"
    as_json = {"content_type": "application/json"}
    events.deliver()  # the fixture's pushes
    AuditEvent.objects.all().delete()
    assert api("dev").post(tags, data=json.dumps({"name": "rc"}), **as_json).status_code == 201
    assert api("maint").delete(f"{tags}/rc").status_code == 200
    assert api("dev").delete(f"{tags}/v1").status_code == 403  # refused: not audited
    desc = json.dumps({"description": "d"})
    assert api("padmin").put(base, data=desc, **as_json).status_code == 200
    copy = "/api/v2.0/projects/pub/repositories/copied/artifacts?from=team/app:v2"
    assert api("admin").post(copy).status_code == 201
    assert api("maint").delete(f"{base}/artifacts/{content['v1']}").status_code == 200
    assert api("padmin").delete("/api/v2.0/projects/team/repositories/group%2Fnested").status_code
    events.deliver()
    trail = AuditEvent.objects.order_by("occurred_at", "id")
    assert [(e.username, e.operation, e.resource_type, e.resource) for e in trail] == [
        ("dev", "create", "tag", "team/app:rc"),
        ("maint", "delete", "tag", "team/app:rc"),
        ("padmin", "update", "repository", "team/app"),
        ("admin", "create", "artifact", f"pub/copied@{content['v2']}"),
        ("maint", "delete", "artifact", f"team/app@{content['v1']}"),
        ("padmin", "delete", "repository", "team/group/nested"),
    ]
    assert {e.project_name for e in trail} == {"team", "pub"}
