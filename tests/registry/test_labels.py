"""Harbor's labels: global and project labels, who manages them, attaching
them to artifacts, artifacts shown and filtered with their labels."""

from __future__ import annotations

import json

import pytest

from accounts.models import Project, User
from accounts.services.auth import actor_for_user
from audit.models import AuditEvent
from registry.models import ArtifactLabel, Label, Manifest
from registry.services import labels
from tests.registry.helpers import InProcess
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

JSON = {"content_type": "application/json"}
ARTIFACTS = "/api/v2.0/projects/team/repositories/app/artifacts"


def post(who: str, url: str, payload: dict) -> object:
    return api(who).post(url, data=json.dumps(payload), **JSON)


def put(who: str, url: str, payload: dict) -> object:
    return api(who).put(url, data=json.dumps(payload), **JSON)


def created_id(response) -> int:
    assert response.status_code == 201, response.content
    return int(response["Location"].rsplit("/", 1)[1])


@pytest.fixture
def content(team, v2):
    reg = InProcess(v2)
    v1, _ = reg.push_image("team/app", "v1")
    v2_digest, _ = reg.push_image("team/app", "v2")
    return {"v1": v1, "v2": v2_digest, "reg": reg}


@pytest.fixture
def other():
    """Project B: the team's admin is no member of it; it has a label."""
    project = Project.objects.create(name="other", owner_id=1)
    admin = actor_for_user(User.objects.get(pk=1))
    label = labels.label_create(actor=admin, name="b-only", scope="p", project_id=project.pk)
    return project, label


def test_global_labels_are_managed_by_system_administrators(team):
    body = {"name": "approved", "color": "#00FF00", "description": "QA passed", "scope": "g"}
    assert post("padmin", "/api/v2.0/labels", body).status_code == 403
    assert api().post("/api/v2.0/labels", data=json.dumps(body), **JSON).status_code == 401
    label_id = created_id(post("admin", "/api/v2.0/labels", body))
    assert post("admin", "/api/v2.0/labels", body).status_code == 409
    listed = api("guest").get("/api/v2.0/labels?scope=g").json()
    assert [(x["id"], x["name"], x["scope"], x["project_id"]) for x in listed] == [
        (label_id, "approved", "g", 0)
    ]
    one = api("dev").get(f"/api/v2.0/labels/{label_id}").json()
    assert (one["color"], one["description"]) == ("#00FF00", "QA passed")
    assert put("padmin", f"/api/v2.0/labels/{label_id}", {"name": "x"}).status_code == 403
    assert api("padmin").delete(f"/api/v2.0/labels/{label_id}").status_code == 403
    assert put("admin", f"/api/v2.0/labels/{label_id}", {"color": "#0000FF"}).status_code == 200
    assert Label.objects.get(pk=label_id).color == "#0000FF"
    assert Label.objects.get(pk=label_id).name == "approved"  # not sent: kept
    assert api("admin").delete(f"/api/v2.0/labels/{label_id}").status_code == 200
    assert not Label.objects.filter(pk=label_id).exists()


def test_project_labels_by_role(team):
    body = {"name": "stable", "scope": "p", "project_id": team.pk}
    assert post("dev", "/api/v2.0/labels", body).status_code == 403
    assert post("outsider", "/api/v2.0/labels", body).status_code == 404
    label_id = created_id(post("maint", "/api/v2.0/labels", body))
    assert post("padmin", "/api/v2.0/labels", body).status_code == 409
    # The same name is free globally and in another project.
    created_id(post("admin", "/api/v2.0/labels", {**body, "scope": "g"}))
    query = f"/api/v2.0/labels?scope=p&project_id={team.pk}"
    assert [x["id"] for x in api("guest").get(query).json()] == [label_id]
    assert api("lguest").get(query).status_code == 403
    assert api("outsider").get(query).status_code == 404
    assert api("outsider").get(f"/api/v2.0/labels/{label_id}").status_code == 404
    assert api("guest").get(f"/api/v2.0/labels/{label_id}").json()["project_id"] == team.pk
    assert put("dev", f"/api/v2.0/labels/{label_id}", {"name": "x"}).status_code == 403
    assert put("padmin", f"/api/v2.0/labels/{label_id}", {"name": "gold"}).status_code == 200
    assert Label.objects.get(pk=label_id).name == "gold"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v2.0/labels",
        "/api/v2.0/labels?scope=x",
        "/api/v2.0/labels?scope=p",
        "/api/v2.0/labels?scope=g&project_id=x",
    ],
)
def test_listing_needs_a_scope_and_a_project(team, url):
    assert api("admin").get(url).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "g"},
        {"name": " ", "scope": "g"},
        {"name": "a", "scope": "x"},
        {"name": "a", "scope": "p"},
        {"name": "a" * 129, "scope": "g"},
        {"name": "a\nb", "scope": "g"},
        {"name": 7, "scope": "g"},
    ],
)
def test_a_malformed_label_is_refused(team, body):
    assert post("admin", "/api/v2.0/labels", body).status_code == 400
    assert not Label.objects.exists()


def test_labels_on_artifacts(content):
    team = Project.objects.get(name="team")
    project_label = created_id(
        post("maint", "/api/v2.0/labels", {"name": "stable", "scope": "p", "project_id": team.pk})
    )
    global_label = created_id(post("admin", "/api/v2.0/labels", {"name": "qa", "scope": "g"}))
    url = f"{ARTIFACTS}/v1/labels"
    assert post("guest", url, {"id": project_label}).status_code == 403
    assert post("dev", url, {"id": project_label}).status_code == 200
    assert post("dev", url, {"id": project_label}).status_code == 409
    assert post("dev", url, {"id": global_label}).status_code == 200
    assert post("dev", url, {"id": 987654}).status_code == 404
    assert post("dev", f"{ARTIFACTS}/nope/labels", {"id": global_label}).status_code == 404
    one = api("guest").get(f"{ARTIFACTS}/v1?with_label=true").json()
    assert [(x["id"], x["name"]) for x in one["labels"]] == [
        (global_label, "qa"),
        (project_label, "stable"),
    ]
    assert "labels" not in api("guest").get(f"{ARTIFACTS}/v1").json()  # Harbor: with_label=false
    listed = api("guest").get(f"{ARTIFACTS}?with_label=true").json()
    assert {a["digest"]: [x["name"] for x in a["labels"]] for a in listed} == {
        content["v1"]: ["qa", "stable"],
        content["v2"]: [],
    }
    assert api("guest").delete(f"{url}/{global_label}").status_code == 403
    assert api("dev").delete(f"{url}/{global_label}").status_code == 200
    assert api("dev").delete(f"{url}/{global_label}").status_code == 404
    assert list(
        Manifest.objects.get(digest=content["v1"]).labels.values_list("name", flat=True)
    ) == ["stable"]


def test_c23_another_projects_label_is_not_found_through_this_project(content, other):
    """C23: the admin of `team` addressing `other`'s label gets 404, and
    `other` is unchanged."""
    _, label = other
    url = f"{ARTIFACTS}/v1/labels"
    r = post("padmin", url, {"id": label.pk})
    assert r.status_code == 404
    assert r.json()["errors"][0]["message"] == f"label {label.pk} not found"
    assert api("padmin").delete(f"{url}/{label.pk}").status_code == 404
    assert api("padmin").get(f"/api/v2.0/labels/{label.pk}").status_code == 404
    assert put("padmin", f"/api/v2.0/labels/{label.pk}", {"name": "mine"}).status_code == 404
    assert api("padmin").delete(f"/api/v2.0/labels/{label.pk}").status_code == 404
    missing = api("padmin").get("/api/v2.0/labels/987654")
    assert missing.json()["errors"][0]["message"] == "label 987654 not found"
    # Even the sysadmin cannot attach B's label to A's artifact.
    assert post("admin", url, {"id": label.pk}).status_code == 404
    assert Label.objects.get(pk=label.pk).name == "b-only"
    assert not ArtifactLabel.objects.exists()


def test_deleting_a_label_detaches_it(content):
    label_id = created_id(post("admin", "/api/v2.0/labels", {"name": "qa", "scope": "g"}))
    for tag in ("v1", "v2"):
        assert post("dev", f"{ARTIFACTS}/{tag}/labels", {"id": label_id}).status_code == 200
    assert api("admin").delete(f"/api/v2.0/labels/{label_id}").status_code == 200
    assert not ArtifactLabel.objects.exists()
    listed = api("guest").get(f"{ARTIFACTS}?with_label=true").json()
    assert [a["labels"] for a in listed] == [[], []]


def test_deleting_a_project_deletes_its_labels(team):
    assert post("admin", "/api/v2.0/projects", {"project_name": "brief"}).status_code == 201
    brief = Project.objects.get(name="brief")
    created_id(
        post("admin", "/api/v2.0/labels", {"name": "x", "scope": "p", "project_id": brief.pk})
    )
    assert api("admin").delete("/api/v2.0/projects/brief").status_code == 200
    assert not Label.objects.exists()


def test_filter_artifacts_by_labels(content):
    team = Project.objects.get(name="team")
    a = created_id(post("admin", "/api/v2.0/labels", {"name": "a", "scope": "g"}))
    b = created_id(
        post("maint", "/api/v2.0/labels", {"name": "b", "scope": "p", "project_id": team.pk})
    )
    for tag, label in (("v1", a), ("v1", b), ("v2", a)):
        assert post("dev", f"{ARTIFACTS}/{tag}/labels", {"id": label}).status_code == 200

    def digests(q: str, url: str = ARTIFACTS) -> list[str]:
        r = api("guest").get(url, {"q": q})
        assert r.status_code == 200, r.content
        return [x["digest"] for x in r.json()]

    assert digests(f"labels=({a} {b})") == [content["v1"]]
    assert digests(f"labels=({a})") == [content["v2"], content["v1"]]
    assert digests(f"labels=({a}),tags=v2") == [content["v2"]]
    assert digests(f"labels=({b})", "/api/v2.0/projects/team/artifacts") == [content["v1"]]
    assert digests("labels=(987654)") == []
    for bad in (f"labels={a}", "labels=(x)", "labels=()", f"labels=({a}"):
        assert api("guest").get(ARTIFACTS, {"q": bad}).status_code == 400, bad


def test_artifact_list_with_labels_has_no_n_plus_one(content, django_assert_max_num_queries):
    label_id = created_id(post("admin", "/api/v2.0/labels", {"name": "qa", "scope": "g"}))
    for i in range(6):
        content["reg"].push_image("team/app", f"extra{i}")
        assert post("dev", f"{ARTIFACTS}/extra{i}/labels", {"id": label_id}).status_code == 200
    with django_assert_max_num_queries(13):
        r = api("admin").get(f"{ARTIFACTS}?page_size=20&with_label=true")
    assert sum(len(a["labels"]) for a in r.json()) == 6


def test_label_changes_are_audited_with_their_actor(content):
    team = Project.objects.get(name="team")
    AuditEvent.objects.all().delete()
    label_id = created_id(
        post("maint", "/api/v2.0/labels", {"name": "stable", "scope": "p", "project_id": team.pk})
    )
    assert post("dev", f"{ARTIFACTS}/v1/labels", {"id": label_id}).status_code == 200
    assert post("guest", f"{ARTIFACTS}/v1/labels", {"id": label_id}).status_code == 403
    assert api("padmin").delete(f"/api/v2.0/labels/{label_id}").status_code == 200
    rows = AuditEvent.objects.order_by("id").values_list("username", "operation", "resource_type")
    assert list(rows) == [
        ("maint", "create", "label"),
        ("dev", "create", "artifact_label"),
        ("padmin", "delete", "label"),
    ]
