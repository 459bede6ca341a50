"""Harbor operations on resources Berth already had (issue 14, point 9): quota
limits, system volumes and root certificate, audit event types, a project's
artifacts, accessories, additions, and the routes that reach them through
repository names holding slashes."""

from __future__ import annotations

import gzip
import json
from urllib.parse import quote

import pytest

from audit.models import AuditEvent
from tests.registry.helpers import (
    NOTATION,
    InProcess,
    artifact,
    chart,
    chart_of,
    index,
    sha256,
)
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = [
    {"created": "2024-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
    {"created": "2024-01-02T03:04:06Z", "created_by": 'CMD ["sh"]', "empty_layer": True},
]


@pytest.fixture
def content(team, v2):
    reg = InProcess(v2)
    config = json.dumps({"architecture": "amd64", "os": "linux", "history": HISTORY}).encode()
    v1, v1_body = reg.push_image("team/app", "v1", config=config)
    v2_digest, _ = reg.push_image("team/app", "v2")
    nested, nested_body = reg.push_image("team/group/nested", "latest", config=config)
    return {
        "reg": reg,
        "v1": v1,
        "v1_body": v1_body,
        "v2": v2_digest,
        "nested": nested,
        "nested_body": nested_body,
    }


def _attach(reg: InProcess, name: str, subject: bytes, artifact_type: str) -> str:
    body, blobs = artifact(subject, artifact_type, b"payload " + artifact_type.encode())
    return reg.push(name, sha256(body), body, blobs)[0]


# quotas -------------------------------------------------------------------------


def _limits_stored() -> dict[int, int]:
    # Imported here: on code before quotas were stored, each test fails on its own.
    from registry.models import ProjectQuota

    return dict(ProjectQuota.objects.values_list("project_id", "storage_limit"))


def test_a_sysadmin_sets_hard_limits_and_every_view_shows_them(content, team):
    url = f"/api/v2.0/quotas/{team.pk}"
    r = api("admin").put(url, {"hard": {"storage": 10 * 2**30}}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert _limits_stored() == {team.pk: 10 * 2**30}
    one = api("admin").get(url).json()
    assert one["hard"] == {"storage": 10 * 2**30}
    assert one["used"]["storage"] > 0
    listed = api("admin").get(f"/api/v2.0/quotas?reference=project&reference_id={team.pk}")
    assert [q["hard"] for q in listed.json()] == [{"storage": 10 * 2**30}]
    summary = api("padmin").get(f"/api/v2.0/projects/{team.pk}/summary").json()
    assert summary["quota"] == {"hard": {"storage": 10 * 2**30}, "used": one["used"]}
    back = api("admin").put(url, {"hard": {"storage": -1}}, content_type="application/json")
    assert back.status_code == 200
    assert api("admin").get(url).json()["hard"] == {"storage": -1}
    audited = AuditEvent.objects.filter(resource_type="quota", operation="update")
    assert [(e.username, e.resource, e.project_id) for e in audited] == [
        ("admin", "team", team.pk),
        ("admin", "team", team.pk),
    ]


def test_an_unset_quota_is_unlimited(content, team):
    assert api("admin").get(f"/api/v2.0/quotas/{team.pk}").json()["hard"] == {"storage": -1}
    summary = api("guest").get(f"/api/v2.0/projects/{team.pk}/summary").json()
    assert summary["quota"]["hard"] == {"storage": -1}


@pytest.mark.parametrize(
    ("user", "status"),
    [("padmin", 403), ("maint", 403), ("guest", 403), ("outsider", 404), (None, 401)],
)
def test_only_system_administrators_set_quotas(team, user, status):
    r = api(user).put(
        f"/api/v2.0/quotas/{team.pk}", {"hard": {"storage": 1}}, content_type="application/json"
    )
    assert r.status_code == status, r.content
    assert _limits_stored() == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "hard required in body"),
        ({"hard": {}}, "hard required in body"),
        ({"hard": None}, "hard required in body"),
        ({"hard": [1]}, "hard required in body"),
        ({"hard": {"storage": 0}}, "invalid value for resource storage"),
        ({"hard": {"storage": -2}}, "invalid value for resource storage"),
        ({"hard": {"storage": "10"}}, "invalid value for resource storage"),
        ({"hard": {"storage": 1.5}}, "invalid value for resource storage"),
        ({"hard": {"storage": True}}, "invalid value for resource storage"),
        ({"hard": {"storage": 2**63}}, "invalid value for resource storage"),
        ({"hard": {"storage": 1, "count": 5}}, "resource count not support"),
        ({"hard": {"count": 5}}, "resource count not support"),
    ],
)
def test_odd_limits_are_refused_with_harbors_messages(team, body, message):
    r = api("admin").put(f"/api/v2.0/quotas/{team.pk}", body, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["message"] == message
    assert _limits_stored() == {}


def test_a_missing_quota_is_404(team):
    r = api("admin").put(
        "/api/v2.0/quotas/987654", {"hard": {"storage": 1}}, content_type="application/json"
    )
    assert r.status_code == 404


# system information -----------------------------------------------------------


def test_volumes_for_system_administrators(team):
    r = api("admin").get("/api/v2.0/systeminfo/volumes")
    assert r.status_code == 200
    [disk] = r.json()["storage"]
    assert disk["total"] > 0 and 0 <= disk["free"] <= disk["total"]
    assert api("padmin").get("/api/v2.0/systeminfo/volumes").status_code == 403
    assert api().get("/api/v2.0/systeminfo/volumes").status_code == 401


def test_no_root_certificate_is_harbors_404(team):
    r = api().get("/api/v2.0/systeminfo/getcert")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "NOT_FOUND"
    assert api("admin").get("/api/v2.0/systeminfo").json()["has_ca_root"] is False


def test_a_configured_root_certificate_is_served(team, settings, tmp_path):
    cert = tmp_path / "ca.crt"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.BERTH_ROOT_CA_FILE = str(cert)
    r = api().get("/api/v2.0/systeminfo/getcert")
    assert r.status_code == 200
    assert r.content == cert.read_bytes()
    assert r["Content-Disposition"] == "attachment; filename=ca.crt"
    assert api("admin").get("/api/v2.0/systeminfo").json()["has_ca_root"] is True


# audit event types ----------------------------------------------------------------


def test_event_types_name_every_kind_of_row_berth_writes(content, team):
    api("admin").put(
        f"/api/v2.0/quotas/{team.pk}",
        {"hard": {"storage": 5 * 2**30}},
        content_type="application/json",
    )
    api("admin").post(
        "/api/v2.0/projects/team/repositories/app/artifacts/v1/tags",
        {"name": "again"},
        content_type="application/json",
    )
    r = api("guest").get("/api/v2.0/auditlog-exts/events")
    assert r.status_code == 200
    names = [e["event_type"] for e in r.json()]
    assert names == sorted(names)
    assert {"push_artifact", "create_tag", "update_quota", "create_project"} <= set(names)
    written = {f"{e.operation}_{e.resource_type}" for e in AuditEvent.objects.all()}
    assert written and written <= set(names)
    assert api().get("/api/v2.0/auditlog-exts/events").status_code == 401


# a project's artifacts -------------------------------------------------------------


def test_a_projects_artifacts_across_its_repositories(content, team):
    guest = api("guest")
    r = guest.get("/api/v2.0/projects/team/artifacts")
    assert r.status_code == 200, r.content
    assert [a["digest"] for a in r.json()] == [content["nested"], content["v2"], content["v1"]]
    assert r["X-Total-Count"] == "3"
    assert [a["repository_name"] for a in r.json()] == ["team/group/nested", "team/app", "team/app"]
    by_id = guest.get(f"/api/v2.0/projects/{team.pk}/artifacts?q=tags%3Dv1").json()
    assert [a["digest"] for a in by_id] == [content["v1"]]
    fuzzy = guest.get("/api/v2.0/projects/team/artifacts?q=tags%3D~v&sort=push_time").json()
    assert [a["digest"] for a in fuzzy] == [content["v1"], content["v2"]]
    untagged = guest.get("/api/v2.0/projects/team/artifacts?q=tags%3Dnil").json()
    assert untagged == []
    no_tags = guest.get("/api/v2.0/projects/team/artifacts?with_tag=false").json()
    assert all("tags" not in a for a in no_tags)
    assert api("outsider").get("/api/v2.0/projects/team/artifacts").status_code == 404
    assert guest.get("/api/v2.0/projects/team/artifacts?q=secret%3D1").status_code == 400
    assert guest.get("/api/v2.0/projects/team/artifacts?with_tag=maybe").status_code == 400


def test_latest_in_repository_needs_a_type(content):
    guest = api("guest")
    # Escaped twice, as Harbor's clients send q (a bare "+" would be a space).
    config_type = quote(quote("application/vnd.oci.image.config.v1+json", safe=""), safe="")
    latest = guest.get(
        f"/api/v2.0/projects/team/artifacts?q=media_type%3D{config_type}&latest_in_repository=true"
    ).json()
    assert [a["digest"] for a in latest] == [content["nested"], content["v2"]]
    everything = guest.get("/api/v2.0/projects/team/artifacts?latest_in_repository=true").json()
    assert len(everything) == 3


def test_a_projects_artifacts_take_a_fixed_number_of_queries(
    content, django_assert_max_num_queries
):
    for i in range(6):
        content["reg"].push_image(f"team/r{i}", "v1")
        _attach(content["reg"], "team/app", content["v1_body"], f"application/x-note{i}")
    with django_assert_max_num_queries(14):
        r = api("admin").get("/api/v2.0/projects/team/artifacts?page_size=50&with_accessory=true")
    assert len(r.json()) == 15


# accessories --------------------------------------------------------------------------


def test_referrers_are_accessories_of_their_subject(content):
    reg = content["reg"]
    sbom = _attach(reg, "team/app", content["v1_body"], "application/spdx+json")
    signature = _attach(reg, "team/app", content["v1_body"], NOTATION)
    guest = api("guest")
    r = guest.get("/api/v2.0/projects/team/repositories/app/artifacts/v1/accessories")
    assert r.status_code == 200, r.content
    found = {a["digest"]: a for a in r.json()}
    assert {d: a["type"] for d, a in found.items()} == {
        sbom: "subject.accessory",
        signature: "signature.notation",
    }
    assert found[sbom]["subject_artifact_digest"] == content["v1"]
    assert found[sbom]["subject_artifact_repo"] == "team/app"
    typed = guest.get(
        "/api/v2.0/projects/team/repositories/app/artifacts/v1/accessories"
        "?q=type%3Dsignature.notation"
    ).json()
    assert [a["digest"] for a in typed] == [signature]
    listed = guest.get("/api/v2.0/projects/team/repositories/app/artifacts?with_accessory=true")
    by_digest = {a["digest"]: a for a in listed.json()}
    assert {a["digest"] for a in by_digest[content["v1"]]["accessories"]} == {sbom, signature}
    assert by_digest[content["v2"]]["accessories"] == []
    one = guest.get(f"/api/v2.0/projects/team/repositories/app/artifacts/{content['v1']}")
    assert "accessories" not in one.json()
    one = guest.get("/api/v2.0/projects/team/repositories/app/artifacts/v1?with_accessory=true")
    assert {a["digest"] for a in one.json()["accessories"]} == {sbom, signature}
    assert (
        api("outsider")
        .get("/api/v2.0/projects/team/repositories/app/artifacts/v1/accessories")
        .status_code
        == 404
    )


# additions ----------------------------------------------------------------------------


def test_build_history_of_an_image(content):
    r = api("lguest").get(
        "/api/v2.0/projects/team/repositories/app/artifacts/v1/additions/build_history"
    )
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("application/json")
    assert r.json() == HISTORY
    art = api("guest").get("/api/v2.0/projects/team/repositories/app/artifacts/v1").json()
    assert art["addition_links"]["build_history"]["href"] == (
        f"/api/v2.0/projects/team/repositories/app/artifacts/{content['v1']}"
        "/additions/build_history"
    )


@pytest.mark.parametrize("addition", ["values.yaml", "vulnerabilities", "sbom", "nope"])
def test_additions_an_image_has_not_are_404(content, addition):
    r = api("guest").get(
        f"/api/v2.0/projects/team/repositories/app/artifacts/v1/additions/{addition}"
    )
    assert r.status_code == 404


def test_an_index_has_no_build_history(content):
    body = index([content["v1_body"]])
    assert (
        content["reg"]
        .put_manifest("team/app", "multi", body, "application/vnd.oci.image.index.v1+json")
        .status_code
        == 201
    )
    r = api("guest").get(
        "/api/v2.0/projects/team/repositories/app/artifacts/multi/additions/build_history"
    )
    assert r.status_code == 404


CHART_YAML = b"""apiVersion: v2
name: demo
version: 1.0.0
dependencies:
  - name: redis
    version: 17.0.0
    repository: https://charts.example.com
  - name: common
    version: "2.x"
    repository: oci://registry.example.com/charts
"""


def test_a_charts_values_readme_and_dependencies(content):
    archive = chart(
        {
            "demo/Chart.yaml": CHART_YAML,
            "demo/values.yaml": b"replicas: 2\n",
            "demo/README.md": b"# Demo\n",
            "demo/templates/values.yaml": b"not: this\n",
        }
    )
    content["reg"].push("team/charts/demo", "1.0.0", *archive)
    base = "/api/v2.0/projects/team/repositories/charts%252Fdemo/artifacts/1.0.0"
    guest = api("guest")
    assert guest.get(base).json()["type"] == "CHART"
    values = guest.get(f"{base}/additions/values.yaml")
    assert (values.status_code, values.content) == (200, b"replicas: 2\n")
    assert guest.get(f"{base}/additions/readme.md").content == b"# Demo\n"
    assert guest.get(f"{base}/additions/dependencies").json() == [
        {"name": "redis", "version": "17.0.0", "repository": "https://charts.example.com"},
        {"name": "common", "version": "2.x", "repository": "oci://registry.example.com/charts"},
    ]
    assert guest.get(f"{base}/additions/build_history").status_code == 404


def test_a_chart_that_unpacks_too_far_is_refused(content, monkeypatch):
    from registry.services import additions

    monkeypatch.setattr(additions, "MAX_UNPACKED", 1 << 16)
    bomb = gzip.compress(b"\0" * (1 << 20))
    content["reg"].push("team/bomb", "1", *chart_of(bomb))
    r = api("guest").get(
        "/api/v2.0/projects/team/repositories/bomb/artifacts/1/additions/values.yaml"
    )
    assert r.status_code == 404
    assert "unpacks to more than" in r.json()["errors"][0]["message"]


# routes through repository names with slashes --------------------------------------------


@pytest.mark.parametrize("repo", ["group/nested", "group%2Fnested", "group%252Fnested"])
def test_sub_paths_of_a_nested_repositorys_artifact_reach_their_views(content, repo):
    _attach(content["reg"], "team/group/nested", content["nested_body"], NOTATION)
    base = f"/api/v2.0/projects/team/repositories/{repo}/artifacts/latest"
    guest = api("guest")
    history = guest.get(f"{base}/additions/build_history")
    assert (history.status_code, history.json()) == (200, HISTORY)
    accessories = guest.get(f"{base}/accessories")
    assert [a["type"] for a in accessories.json()] == ["signature.notation"]
    assert [t["name"] for t in guest.get(f"{base}/tags").json()] == ["latest"]
    assert guest.get(base).json()["repository_name"] == "team/group/nested"
