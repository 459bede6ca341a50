"""Harbor's registry and replication API in-process: shapes, validation,
secrets sealed and never returned, executions with their tasks and logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts.access import SYSTEM
from kit import sealed
from replication.models import Endpoint, Execution, Policy, Task
from replication.services import executions
from tests.conftest import ADMIN, basic
from tests.registry.helpers import InProcess

pytestmark = pytest.mark.django_db(transaction=True)

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture
def admin(test_projects: Any, settings: Any) -> Client:
    settings.BERTH_REPLICATION_RETRIES = 0
    return Client(HTTP_AUTHORIZATION=basic(*ADMIN))


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def put(client: Client, path: str, body: Any) -> Any:
    return client.put(path, data=json.dumps(body), content_type="application/json")


def registry(client: Client, name: str = "dist", url: str = DEAD, secret: str = "s3cr3t-pw") -> int:
    r = post(
        client,
        "/api/v2.0/registries",
        {
            "name": name,
            "type": "docker-registry",
            "url": url,
            "insecure": False,
            "credential": {"type": "basic", "access_key": "repl", "access_secret": secret},
        },
    )
    assert r.status_code == 201, r.content
    return int(r["Location"].rsplit("/", 1)[1])


def test_registries_keep_the_secret_sealed_and_never_return_it(admin: Client) -> None:
    rid = registry(admin)
    body = admin.get(f"/api/v2.0/registries/{rid}").json()
    assert body["credential"] == {"type": "basic", "access_key": "repl", "access_secret": ""}
    assert (body["name"], body["type"], body["url"], body["status"]) == (
        "dist",
        "docker-registry",
        DEAD,
        "unknown",
    )
    stored = Endpoint.objects.get(pk=rid).access_secret_sealed
    assert "s3cr3t-pw" not in stored
    assert sealed.unseal(stored) == "s3cr3t-pw"
    assert "s3cr3t-pw" not in admin.get("/api/v2.0/registries").content.decode()

    # An update that leaves the secret out keeps it.
    assert (
        put(admin, f"/api/v2.0/registries/{rid}", {"description": "the lab's"}).status_code == 200
    )
    assert sealed.unseal(Endpoint.objects.get(pk=rid).access_secret_sealed) == "s3cr3t-pw"
    assert admin.get(f"/api/v2.0/registries/{rid}").json()["description"] == "the lab's"

    r = admin.get("/api/v2.0/registries?name=dis")
    assert (r["X-Total-Count"], [e["id"] for e in r.json()]) == ("1", [rid])
    assert (
        post(
            admin, "/api/v2.0/registries", {"name": "dist", "type": "docker-registry", "url": DEAD}
        ).status_code
        == 409
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "type": "nope", "url": DEAD},
        {"name": "x", "type": "docker-registry", "url": "ftp://host"},
        {"name": "x", "type": "docker-registry", "url": "http://user:pw@host"},
        {"name": "x", "type": "docker-registry"},
        {"name": "x", "type": "docker-registry", "url": DEAD, "insecure": "yes"},
        {"name": "x", "type": "docker-registry", "url": DEAD, "ca_certificate": "not pem"},
        {"name": "x", "type": "docker-registry", "url": "http://[::1"},
        {"name": "x", "type": "docker-registry", "url": "http://host:port/"},
        {"name": "x", "type": "docker-registry", "url": "http://h/" + "a" * 1000},
        {"name": "x", "type": "docker-registry", "url": DEAD, "credential": {"access_key": 5}},
    ],
)
def test_bad_registries_are_a_400(admin: Client, body: dict[str, Any]) -> None:
    r = post(admin, "/api/v2.0/registries", body)
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert not Endpoint.objects.exists()


def test_ping_and_info(admin: Client) -> None:
    rid = registry(admin)
    r = post(admin, "/api/v2.0/registries/ping", {"id": rid})
    assert r.status_code == 400
    assert "failed to ping" in r.json()["errors"][0]["message"]
    assert Endpoint.objects.get(pk=rid).status == "unhealthy"
    info = admin.get(f"/api/v2.0/registries/{rid}/info").json()
    assert info["type"] == "docker-registry"
    assert [f["type"] for f in info["supported_resource_filters"]] == ["name", "tag"]
    assert admin.get("/api/v2.0/replication/adapters").json() == [
        "berth",
        "harbor",
        "docker-registry",
        "docker-hub",
    ]
    assert set(admin.get("/api/v2.0/replication/adapterinfos").json()) == {
        "berth",
        "harbor",
        "docker-registry",
        "docker-hub",
    }


def test_an_endpoint_without_credentials_is_called_anonymously(admin: Client) -> None:
    r = post(
        admin, "/api/v2.0/registries", {"name": "open", "type": "docker-registry", "url": DEAD}
    )
    assert r.status_code == 201
    rid = int(r["Location"].rsplit("/", 1)[1])
    assert Endpoint.objects.get(pk=rid).access_secret_sealed == ""
    r = post(admin, "/api/v2.0/registries/ping", {"id": rid})
    assert r.status_code == 400
    assert "Unreachable: GET http://127.0.0.1:9/v2/" in r.json()["errors"][0]["message"]


def test_policies_crud_in_harbors_shape(admin: Client) -> None:
    rid = registry(admin)
    r = post(
        admin,
        "/api/v2.0/replication/policies",
        {
            "name": "to-dist",
            "dest_registry": {"id": rid},
            "dest_namespace": "mirror",
            "dest_namespace_replace_count": 1,
            "filters": [
                {"type": "name", "value": "app/**"},
                {"type": "tag", "value": "^v[0-9]+$", "decoration": "matches", "kind": "regex"},
            ],
            "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 0 * * * *"}},
            "replicate_deletion": True,
            "override": True,
            "speed": 1024,
            "enabled": True,
        },
    )
    assert r.status_code == 201, r.content
    pid = int(r["Location"].rsplit("/", 1)[1])
    body = admin.get(f"/api/v2.0/replication/policies/{pid}").json()
    assert body["src_registry"] is None
    assert body["dest_registry"]["id"] == rid
    assert body["dest_registry"]["credential"]["access_secret"] == ""
    assert body["trigger"] == {"type": "scheduled", "trigger_settings": {"cron": "0 0 * * * *"}}
    assert body["filters"][1] == {
        "type": "tag",
        "value": "^v[0-9]+$",
        "decoration": "matches",
        "kind": "regex",
    }
    assert (body["speed"], body["replicate_deletion"], body["dest_namespace_replace_count"]) == (
        1024,
        True,
        1,
    )
    assert (
        put(admin, f"/api/v2.0/replication/policies/{pid}", {"enabled": False}).status_code == 200
    )
    assert Policy.objects.get(pk=pid).enabled is False
    assert admin.get("/api/v2.0/replication/policies?name=dist").json()[0]["id"] == pid
    # A registry in use cannot go.
    assert admin.delete(f"/api/v2.0/registries/{rid}").status_code == 412
    assert admin.delete(f"/api/v2.0/replication/policies/{pid}").status_code == 200
    assert admin.delete(f"/api/v2.0/registries/{rid}").status_code == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filters": [{"type": "tag", "value": "(", "kind": "regex"}]}, "not valid"),
        ({"filters": [{"type": "colour", "value": "x"}]}, "filter type"),
        ({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "every day"}}}, "cron"),
        # kit/cron.py: Harbor's six fields; a field out of range; a date never reached.
        ({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 * * * *"}}}, "six"),
        ({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 61 * * * *"}}}, "cron"),
        ({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 0 0 31 2 *"}}}, "never"),
        ({"src_registry": {"id": "<rid>"}}, "exactly one"),
        ({"dest_registry": None}, "exactly one"),
        ({"dest_registry": {"id": 999}}, "does not exist"),
        ({"speed": "fast"}, "integer"),
        ({"dest_registry": {"id": "²"}}, "integer"),
        ({"dest_registry": {"id": 10**30}}, "out of range"),
        ({"dest_namespace": "n" * 300}, "longer than"),
    ],
)
def test_bad_policies_are_a_400(admin: Client, change: dict[str, Any], message: str) -> None:
    rid = registry(admin)
    body: dict[str, Any] = {"name": "p", "dest_registry": {"id": rid}}
    body.update({k: ({"id": rid} if v == {"id": "<rid>"} else v) for k, v in change.items()})
    r = post(admin, "/api/v2.0/replication/policies", body)
    assert r.status_code == 400, r.content
    assert message in r.json()["errors"][0]["message"]
    assert not Policy.objects.exists()


def test_an_execution_against_a_dead_registry_fails_clearly(admin: Client, v2: Any) -> None:
    InProcess(v2).push_image("app/web", "v1")
    rid = registry(admin)
    pid = int(
        post(admin, "/api/v2.0/replication/policies", {"name": "p", "dest_registry": {"id": rid}})[
            "Location"
        ].rsplit("/", 1)[1]
    )
    r = post(admin, "/api/v2.0/replication/executions", {"policy_id": pid})
    assert r.status_code == 201, r.content
    eid = int(r["Location"].rsplit("/", 1)[1])
    assert executions.run(eid) == "Failed"

    body = admin.get(f"/api/v2.0/replication/executions/{eid}").json()
    assert (body["status"], body["total"], body["failed"], body["trigger"]) == (
        "Failed",
        1,
        1,
        "manual",
    )
    assert body["status_text"] == "1 of 1 tasks failed"
    tasks = admin.get(f"/api/v2.0/replication/executions/{eid}/tasks").json()
    assert [(t["status"], t["src_resource"], t["dst_resource"]) for t in tasks] == [
        ("Failed", "app/web:[v1]", "app/web:[v1]")
    ]
    log = admin.get(f"/api/v2.0/replication/executions/{eid}/tasks/{tasks[0]['id']}/log")
    assert log["Content-Type"].startswith("text/plain")
    assert "failed: Unreachable: GET http://127.0.0.1:9/v2/" in log.content.decode()
    listed = admin.get(f"/api/v2.0/replication/executions?policy_id={pid}").json()
    assert [e["id"] for e in listed] == [eid]


def test_stop_stops_the_pending_tasks(admin: Client, v2: Any) -> None:
    pusher = InProcess(v2)
    pusher.push_image("app/one", "v1")
    pusher.push_image("app/two", "v1")
    rid = registry(admin)
    policy = Policy.objects.create(name="p", dest_endpoint_id=rid)
    execution = executions.start(policy, trigger="manual", actor=SYSTEM)
    assert execution is not None
    # Planned but not run: its worker is busy elsewhere.
    src, _ = executions.adapters(policy)
    Task.objects.bulk_create(executions.plan(execution, src))
    Execution.objects.filter(pk=execution.pk).update(planned=True, total=2)
    assert put(admin, f"/api/v2.0/replication/executions/{execution.pk}", {}).status_code == 200
    assert executions.run(execution.pk) is None  # nothing left to run
    body = admin.get(f"/api/v2.0/replication/executions/{execution.pk}").json()
    assert (body["status"], body["stopped"]) == ("Stopped", 2)


def test_single_active_refuses_a_second_run(admin: Client) -> None:
    rid = registry(admin)
    Policy.objects.create(name="p", dest_endpoint_id=rid, single_active=True)
    pid = Policy.objects.get().pk
    assert post(admin, "/api/v2.0/replication/executions", {"policy_id": pid}).status_code == 201
    r = post(admin, "/api/v2.0/replication/executions", {"policy_id": pid})
    assert r.status_code == 409
    assert Execution.objects.count() == 1
