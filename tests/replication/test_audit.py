"""Replication in the audit trail: every change to an endpoint or a policy and
every start or stop of an execution leaves exactly one row naming who did it,
through the API and through the admin alike; scheduled and event-based runs
are Berth's own ("system"); secrets never reach a row; a change that fails
leaves no row (the row is written in the change's transaction)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.services.auth import actor_for_user
from audit.events import RECORDED
from audit.models import AuditEvent
from kit import events as kinds
from kit.models import Event
from replication import consumers
from replication.models import Endpoint, Execution, Policy, Trigger
from replication.services import endpoints, executions, policies
from tests.conftest import ADMIN, basic

pytestmark = pytest.mark.django_db(transaction=True)

DEAD = "http://127.0.0.1:9"
SECRET = "hunter2-never-logged"
KINDS = ("registry", "replication_policy", "replication")


def trail() -> list[tuple[str, str, str, str, str]]:
    """The replication rows, oldest first: (user, actor kind, operation,
    resource type, resource)."""
    rows = AuditEvent.objects.filter(resource_type__in=KINDS).order_by("id")
    return [(r.username, r.actor_kind, r.operation, r.resource_type, r.resource) for r in rows]


def no_secret_in_the_trail() -> None:
    for row in AuditEvent.objects.filter(resource_type__in=KINDS):
        text = json.dumps([row.resource, row.detail])
        assert SECRET not in text
        assert "sealed" not in text


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def put(client: Client, path: str, body: Any) -> Any:
    return client.put(path, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def api(test_projects: Any, settings: Any) -> Client:
    settings.BERTH_REPLICATION_RETRIES = 0
    return Client(HTTP_AUTHORIZATION=basic(*ADMIN))


@pytest.fixture
def sysadmin(team: Any, settings: Any) -> Client:
    settings.BERTH_REPLICATION_RETRIES = 0
    client = Client()
    client.force_login(User.objects.get(pk=1))
    return client


def test_the_replication_event_types_are_declared() -> None:
    recorded = {(str(op), str(res)) for op, res in RECORDED}
    for op in ("create", "update", "delete"):
        assert (op, "registry") in recorded
        assert (op, "replication_policy") in recorded
    assert {("create", "replication"), ("update", "replication")} <= recorded


def test_each_api_operation_leaves_one_row_with_its_actor(api: Client) -> None:
    registry = {
        "name": "dist",
        "type": "docker-registry",
        "url": DEAD,
        "credential": {"type": "basic", "access_key": "repl", "access_secret": SECRET},
    }
    r = post(api, "/api/v2.0/registries", registry)
    assert r.status_code == 201, r.content
    rid = int(r["Location"].rsplit("/", 1)[1])
    assert trail() == [("admin", "user", "create", "registry", "dist")]

    r = put(
        api,
        f"/api/v2.0/registries/{rid}",
        {"description": "the mirror", "access_secret": SECRET + "-2"},
    )
    assert r.status_code == 200, r.content
    assert trail()[1:] == [("admin", "user", "update", "registry", "dist")]
    changed = AuditEvent.objects.filter(resource_type="registry").latest("id").detail
    assert set(changed["changed"]) == {"description", "access_secret"}

    r = post(
        api,
        "/api/v2.0/replication/policies",
        {"name": "to-dist", "dest_registry": {"id": rid}, "trigger": {"type": "manual"}},
    )
    assert r.status_code == 201, r.content
    pid = int(r["Location"].rsplit("/", 1)[1])
    r = put(api, f"/api/v2.0/replication/policies/{pid}", {"description": "nightly"})
    assert r.status_code == 200, r.content
    assert trail()[2:] == [
        ("admin", "user", "create", "replication_policy", "to-dist"),
        ("admin", "user", "update", "replication_policy", "to-dist"),
    ]

    r = post(api, "/api/v2.0/replication/executions", {"policy_id": pid})
    assert r.status_code == 201, r.content
    eid = int(r["Location"].rsplit("/", 1)[1])
    assert put(api, f"/api/v2.0/replication/executions/{eid}", {}).status_code == 200
    assert trail()[4:] == [
        ("admin", "user", "create", "replication", "to-dist"),
        ("admin", "user", "update", "replication", "to-dist"),
    ]
    started = AuditEvent.objects.filter(resource_type="replication").earliest("id")
    assert started.detail == {"execution_id": eid, "trigger": "manual"}

    Execution.objects.all().delete()  # so the policy may go
    assert api.delete(f"/api/v2.0/replication/policies/{pid}").status_code == 200
    assert api.delete(f"/api/v2.0/registries/{rid}").status_code == 200
    assert trail()[6:] == [
        ("admin", "user", "delete", "replication_policy", "to-dist"),
        ("admin", "user", "delete", "registry", "dist"),
    ]
    assert len(trail()) == 8
    no_secret_in_the_trail()


def test_refused_operations_leave_no_row(api: Client) -> None:
    r = post(
        api, "/api/v2.0/registries", {"name": "x", "type": "docker-registry", "url": "ftp://x"}
    )
    assert r.status_code == 400
    endpoint = Endpoint.objects.create(name="dist", url=DEAD, type="docker-registry")
    r = post(api, "/api/v2.0/registries", {"name": "dist", "type": "docker-registry", "url": DEAD})
    assert r.status_code == 409
    Policy.objects.create(name="p", dest_endpoint=endpoint)
    assert api.delete(f"/api/v2.0/registries/{endpoint.pk}").status_code == 412
    assert trail() == []


def test_each_admin_operation_leaves_one_row_with_its_actor(sysadmin: Client) -> None:
    form = {
        "name": "dist",
        "url": DEAD,
        "type": "docker-registry",
        "credential_type": "basic",
        "access_key": "repl",
        "access_secret": SECRET,
        "ca_pem": "",
    }
    r = sysadmin.post("/admin/replication/endpoint/add/", form)
    assert r.status_code == 302, r.content.decode()[-2000:]
    endpoint = Endpoint.objects.get()
    r = sysadmin.post(
        f"/admin/replication/endpoint/{endpoint.pk}/change/",
        {**form, "access_key": "repl2", "access_secret": ""},
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    assert trail() == [
        ("admin", "user", "create", "registry", "dist"),
        ("admin", "user", "update", "registry", "dist"),
    ]
    # The secret left empty is kept, so the change names the access key only.
    changed = AuditEvent.objects.filter(resource_type="registry").latest("id").detail
    assert changed["changed"] == ["access_key"]

    policy_form = {
        "name": "push",
        "dest_endpoint": endpoint.pk,
        "dest_namespace": "",
        "dest_namespace_replace_count": "-1",
        "filters": "[]",
        "trigger": "manual",
        "cron": "",
        "speed_kb": "-1",
        "enabled": "on",
    }
    r = sysadmin.post("/admin/replication/policy/add/", policy_form)
    assert r.status_code == 302, r.content.decode()[-3000:]
    policy = Policy.objects.get()
    r = sysadmin.post(
        f"/admin/replication/policy/{policy.pk}/change/", {**policy_form, "override": "on"}
    )
    assert r.status_code == 302, r.content.decode()[-3000:]
    sysadmin.post(
        "/admin/replication/policy/", {"action": "start", "_selected_action": [policy.pk]}
    )
    execution = Execution.objects.get()
    sysadmin.post(
        "/admin/replication/execution/", {"action": "stop", "_selected_action": [execution.pk]}
    )
    assert trail()[2:] == [
        ("admin", "user", "create", "replication_policy", "push"),
        ("admin", "user", "update", "replication_policy", "push"),
        ("admin", "user", "create", "replication", "push"),
        ("admin", "user", "update", "replication", "push"),
    ]

    Execution.objects.all().delete()
    r = sysadmin.post(f"/admin/replication/policy/{policy.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    r = sysadmin.post(f"/admin/replication/endpoint/{endpoint.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert trail()[6:] == [
        ("admin", "user", "delete", "replication_policy", "push"),
        ("admin", "user", "delete", "registry", "dist"),
    ]
    assert not Endpoint.objects.exists()
    no_secret_in_the_trail()


def test_scheduled_and_event_based_runs_are_the_systems(team: Any) -> None:
    endpoint = Endpoint.objects.create(name="dist", url=DEAD, type="docker-registry")
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    scheduled = Policy.objects.create(
        name="hourly", dest_endpoint=endpoint, trigger=Trigger.SCHEDULED, cron="0 * * * * *"
    )
    Policy.objects.filter(pk=scheduled.pk).update(created_at=an_hour_ago)
    assert executions.tick(send=lambda _id: None) == 1
    Policy.objects.create(name="on-push", dest_endpoint=endpoint, trigger=Trigger.EVENT_BASED)
    event = Event.objects.create(
        kind=kinds.MANIFEST_PUSHED,
        key="app/one",
        payload={"repository": "app/one", "digest": "sha256:" + "a" * 64, "tags": ["v1"]},
    )
    consumers.trigger([event])
    assert sorted(trail()) == [
        ("system", "system", "create", "replication", "hourly"),
        ("system", "system", "create", "replication", "on-push"),
    ]


@pytest.mark.parametrize(
    "change",
    ["endpoint_create", "endpoint_update", "endpoint_delete", "policy_create", "policy_delete"],
)
def test_the_row_and_the_change_roll_back_together(
    team: Any, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The trail is written inside the change's transaction: a failure after
    the row was written takes the row and the change back together."""
    actor = actor_for_user(User.objects.get(pk=1))
    endpoint = Endpoint.objects.create(name="dist", url=DEAD, type="docker-registry")
    policy = Policy.objects.create(name="p", dest_endpoint=endpoint)
    before = {
        "endpoints": list(Endpoint.objects.values_list("name", "description")),
        "policies": list(Policy.objects.values_list("name", flat=True)),
    }
    real_record = endpoints.record

    def record_then_fail(**kwargs: Any) -> Any:
        real_record(**kwargs)
        assert AuditEvent.objects.filter(resource_type__in=KINDS).count() == 1
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(endpoints, "record", record_then_fail)
    monkeypatch.setattr(policies, "record", record_then_fail)
    call = {
        "endpoint_create": lambda: endpoints.endpoint_create(
            actor=actor, data={"name": "new", "url": DEAD, "type": "docker-registry"}
        ),
        "endpoint_update": lambda: endpoints.endpoint_update(
            actor=actor, endpoint_id=endpoint.pk, data={"description": "changed"}
        ),
        "endpoint_delete": lambda: (
            Policy.objects.all().delete(),
            endpoints.endpoint_delete(actor=actor, endpoint_id=endpoint.pk),
        ),
        "policy_create": lambda: policies.policy_create(
            actor=actor, data={"name": "q", "dest_endpoint": endpoint.pk}
        ),
        "policy_delete": lambda: policies.policy_delete(actor=actor, policy_id=policy.pk),
    }[change]
    with pytest.raises(RuntimeError, match="disk is full"):
        call()
    assert trail() == []
    assert list(Endpoint.objects.values_list("name", "description")) == before["endpoints"]
    if change != "endpoint_delete":
        assert list(Policy.objects.values_list("name", flat=True)) == before["policies"]


@pytest.mark.parametrize("change", ["start", "stop"])
def test_an_execution_and_its_row_roll_back_together(
    team: Any, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    actor = actor_for_user(User.objects.get(pk=1))
    endpoint = Endpoint.objects.create(name="dist", url=DEAD, type="docker-registry")
    policy = Policy.objects.create(name="p", dest_endpoint=endpoint)
    running = Execution.objects.create(policy=policy, trigger="manual")
    real_record = executions.record

    def record_then_fail(**kwargs: Any) -> Any:
        real_record(**kwargs)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(executions, "record", record_then_fail)
    with pytest.raises(RuntimeError, match="disk is full"):
        if change == "start":
            executions.execution_start(actor=actor, policy_id=policy.pk)
        else:
            executions.execution_stop(actor=actor, execution_id=running.pk)
    assert trail() == []
    assert list(Execution.objects.values_list("pk", "stop_requested")) == [(running.pk, False)]
