"""Project quotas with limits (issue 18): usage counted as Harbor counts it,
pushes over the limit refused with Harbor's message and nothing half-written,
usage kept exact by deletes and by the reconcile job."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command

from accounts.models import Project
from registry.models import Blob, Manifest, ProjectBlob, ProjectQuota, QuotaUsage, RepositoryBlob
from registry.services import quotas
from registry.services.check import registry_check
from tests.registry.helpers import InProcess, image, sha256
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


def _used(name: str = "team") -> int:
    pid = Project.objects.get(name=name).pk
    return api("admin").get(f"/api/v2.0/quotas/{pid}").json()["used"]["storage"]


def _limit(project: Project, limit: int) -> None:
    r = api("admin").put(
        f"/api/v2.0/quotas/{project.pk}",
        {"hard": {"storage": limit}},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content


def test_display_size_writes_bytes_as_harbor_does():
    assert quotas.display_size(512) == "512 B"
    assert quotas.display_size(1024) == "1.0 KiB"
    assert quotas.display_size(int(1.25 * 2**20)) == "1.2 MiB"
    assert quotas.display_size(10 * 2**30) == "10.0 GiB"


def test_a_blob_over_the_limit_is_refused_with_harbors_message_and_nothing_is_kept(team, v2):
    reg = InProcess(v2)
    reg.push_image("team/app", "v1", layers=[b"a" * 1000])
    used = _used()
    _limit(team, used + 1500)
    big = os.urandom(2000)
    r = v2.post(
        f"/v2/team/app/blobs/uploads/?digest={sha256(big)}",
        data=big,
        content_type="application/octet-stream",
    )
    assert r.status_code == 403, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"adding 2.0 KiB of storage resource, which when updated to current usage of "
        f"{quotas.display_size(used)} will exceed the configured upper limit of "
        f"{quotas.display_size(used + 1500)}."
    )
    assert not Blob.objects.filter(digest=sha256(big)).exists()
    assert v2.head(f"/v2/team/app/blobs/{sha256(big)}").status_code == 404
    assert _used() == used
    # What fits still goes in.
    small = os.urandom(1000)
    reg.put_blob("team/app", small)
    assert _used() == used + 1000
    assert registry_check().ok


def test_a_chunked_upload_over_the_limit_is_refused_at_its_completion(team, v2):
    _limit(team, 3000)
    data = os.urandom(4000)
    start = v2.post("/v2/team/app/blobs/uploads/")
    assert start.status_code == 202
    where = start["Location"]
    patched = v2.patch(where, data=data, content_type="application/octet-stream")
    assert patched.status_code == 202
    done = v2.put(
        f"{patched['Location']}&digest={sha256(data)}"
        if "?" in patched["Location"]
        else f"{patched['Location']}?digest={sha256(data)}"
    )
    assert done.status_code == 403
    assert done.json()["errors"][0]["message"].startswith("adding 3.9 KiB of storage resource")
    assert not RepositoryBlob.objects.exists()
    # The session is spent: nothing more goes into it.
    assert v2.get(where).status_code == 404


def test_a_manifest_that_would_pass_the_limit_is_refused_and_its_blobs_stay_orphans(team, v2):
    reg = InProcess(v2)
    body, blobs = image(layers=[b"l" * 1000])
    for data in blobs.values():
        reg.put_blob("team/app", data)
    used = _used()
    _limit(team, used + len(body) - 1)
    r = reg.put_manifest("team/app", "v1", body)
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"
    assert "will exceed the configured upper limit" in r.json()["errors"][0]["message"]
    assert not Manifest.objects.exists()
    assert _used() == used
    _limit(team, used + len(body))
    assert reg.put_manifest("team/app", "v1", body).status_code == 201
    assert _used() == used + len(body)


def test_a_layer_shared_by_repositories_of_a_project_is_charged_once(team, v2):
    reg = InProcess(v2)
    layer = os.urandom(3000)
    _, first = reg.push_image("team/one", "v1", layers=[layer])
    used = _used()
    # No room for another copy of the layer, and none needed.
    _limit(team, used + len(first) + 200)
    reg.push_image("team/two", "v1", layers=[layer])
    assert _used() == used  # same config, layer and manifest: nothing new
    assert ProjectBlob.objects.filter(digest=sha256(layer)).count() == 1


def test_a_mount_over_the_limit_is_refused(team, v2):
    reg = InProcess(v2)
    layer = os.urandom(3000)
    reg.push_image("pub/base", "v1", layers=[layer])
    _limit(team, 1000)
    r = v2.post(f"/v2/team/app/blobs/uploads/?mount={sha256(layer)}&from=pub/base")
    assert r.status_code == 403, r.content
    assert r.json()["errors"][0]["message"].startswith("adding 2.9 KiB of storage resource")
    assert not RepositoryBlob.objects.filter(repository__name="team/app").exists()
    assert _used() == 0
    assert _used("pub") > 3000


def test_a_limit_below_usage_is_a_clear_400(team, v2):
    InProcess(v2).push_image("team/app", "v1", layers=[b"z" * 5000])
    r = api("admin").put(
        f"/api/v2.0/quotas/{team.pk}", {"hard": {"storage": 100}}, content_type="application/json"
    )
    assert r.status_code == 400
    assert "below the project's current usage" in r.json()["errors"][0]["message"]
    assert not ProjectQuota.objects.exists()


def test_deletes_release_what_the_project_no_longer_holds(team, v2):
    reg = InProcess(v2)
    shared = os.urandom(2000)
    _, one_body = reg.push_image("team/one", "v1", layers=[shared])
    reg.push_image("team/two", "v1", layers=[shared, os.urandom(700)])
    before = _used()
    assert (
        api("admin").delete("/api/v2.0/projects/team/repositories/one/artifacts/v1").status_code
        == 200
    )
    # The manifest goes now; its blobs stay linked (and charged) until GC unlinks them.
    assert _used() == before - len(one_body)
    assert api("admin").delete("/api/v2.0/projects/team/repositories/one").status_code == 200
    # The shared layer is still held by team/two: charged still, once.
    assert ProjectBlob.objects.filter(digest=sha256(shared)).count() == 1
    assert _used() == sum(quotas.held(team.pk).values())
    assert api("admin").delete("/api/v2.0/projects/team/repositories/two").status_code == 200
    assert _used() == 0
    assert not ProjectBlob.objects.filter(project=team).exists()
    assert registry_check().ok


def test_reconcile_repairs_usage_and_folds_rows_and_registry_check_sees_drift(team, v2):
    reg = InProcess(v2)
    for n in range(3):
        reg.push_image("team/app", f"v{n}", layers=[os.urandom(500)])
    truth = _used()
    assert QuotaUsage.objects.filter(project=team).count() > 3
    # A crash or a path that bypassed the services: charges and usage drift.
    ProjectBlob.objects.filter(project=team).first().delete()
    QuotaUsage.objects.create(project=team, bytes=12345)
    report = registry_check()
    assert not report.ok
    assert any("project team" in e for e in report.errors)
    call_command("quota_reconcile")
    assert QuotaUsage.objects.filter(project=team).count() == 1
    assert _used() == truth
    assert registry_check().ok


def test_project_creation_takes_a_sysadmins_storage_limit_and_the_default_otherwise(team):
    r = api("admin").post(
        "/api/v2.0/projects",
        {"project_name": "limited", "storage_limit": 2**30},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    pid = Project.objects.get(name="limited").pk
    assert api("admin").get(f"/api/v2.0/quotas/{pid}").json()["hard"] == {"storage": 2**30}
    conf = api("admin").put(
        "/api/v2.0/configurations",
        {"storage_per_project": 5 * 2**20},
        content_type="application/json",
    )
    assert conf.status_code == 200, conf.content
    shown = api("admin").get("/api/v2.0/configurations").json()["storage_per_project"]
    assert shown == {"value": 5 * 2**20, "editable": True}
    r = api("dev").post(
        "/api/v2.0/projects",
        {"project_name": "mine", "storage_limit": 2**40},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    pid = Project.objects.get(name="mine").pk
    assert api("admin").get(f"/api/v2.0/quotas/{pid}").json()["hard"] == {"storage": 5 * 2**20}


@pytest.mark.parametrize("value", [0, -2, "10", True, 1.5])
def test_a_bad_storage_per_project_is_a_400(team, value):
    r = api("admin").put(
        "/api/v2.0/configurations", {"storage_per_project": value}, content_type="application/json"
    )
    assert r.status_code == 400, r.content


def test_a_bad_storage_limit_on_create_is_a_400(team):
    r = api("admin").post(
        "/api/v2.0/projects",
        {"project_name": "odd", "storage_limit": -5},
        content_type="application/json",
    )
    assert r.status_code == 400
    assert not Project.objects.filter(name="odd").exists()


def test_a_copy_into_a_project_over_its_limit_is_refused_and_links_nothing(team, v2):
    reg = InProcess(v2)
    reg.push_image("team/app", "v1", layers=[os.urandom(5000)])
    pub = Project.objects.get(name="pub")
    _limit(pub, 1000)
    r = api("admin").post("/api/v2.0/projects/pub/repositories/copied/artifacts?from=team/app:v1")
    assert r.status_code == 403, r.content
    assert "will exceed the configured upper limit of 1000 B." in r.json()["errors"][0]["message"]
    assert not RepositoryBlob.objects.filter(repository__project=pub).exists()
    assert not Manifest.objects.filter(repository__project=pub).exists()
    assert _used("pub") == 0
