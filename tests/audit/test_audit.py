"""The audit trail: control-plane changes in their own transaction, registry
events buffered off the request path and never lost on a graceful shutdown."""

from __future__ import annotations

import json
import time

import pytest
import requests

from audit.models import AuditEvent
from audit.services import flush
from kit.events import deliver
from tests.conftest import ADMIN, BerthServer
from tests.registry.helpers import Remote
from tests.roles import PASSWORD, api

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_control_plane_changes_are_recorded_with_the_change(team):
    flush()
    AuditEvent.objects.all().delete()
    assert post(api("dev"), "/api/v2.0/projects", {"project_name": "audited"}).status_code == 201
    assert post(api("dev"), "/api/v2.0/projects", {"project_name": "audited"}).status_code == 409
    r = post(
        api("dev"),
        "/api/v2.0/projects/audited/members",
        {"role_id": 3, "member_user": {"username": "guest"}},
    )
    assert r.status_code == 201
    rows = list(
        AuditEvent.objects.order_by("id").values_list(
            "username", "operation", "resource_type", "resource", "project_name"
        )
    )
    assert rows == [
        ("dev", "create", "project", "audited", "audited"),
        ("dev", "create", "member", "guest", "audited"),
    ]


def test_audit_log_api_filters_and_scopes(team):
    flush()
    AuditEvent.objects.all().delete()
    post(
        api("padmin"),
        "/api/v2.0/projects/team/members",
        {"role_id": 2, "member_user": {"username": "outsider"}},
    )
    post(api("admin"), "/api/v2.0/projects", {"project_name": "elsewhere"})
    everything = api("admin").get("/api/v2.0/audit-logs").json()
    assert [(e["operation"], e["resource"]) for e in everything] == [
        ("create", "elsewhere"),
        ("create", "outsider"),
    ]
    assert set(everything[0]) >= {
        "id",
        "username",
        "resource",
        "resource_type",
        "operation",
        "op_time",
    }
    mine = api("padmin").get("/api/v2.0/audit-logs").json()
    assert [e["resource"] for e in mine] == ["outsider"]  # only projects it may read logs of
    r = api("admin").get("/api/v2.0/audit-logs?q=resource_type=member")
    assert [e["resource"] for e in r.json()] == ["outsider"]
    r = api("admin").get("/api/v2.0/audit-logs?q=op_time=[2000-01-01T00:00:00~2001-01-01T00:00:00]")
    assert r.json() == []
    assert api("admin").get("/api/v2.0/audit-logs?q=client_ip=1").status_code == 400
    assert api("padmin").get("/api/v2.0/projects/team/logs").status_code == 200
    assert api("dev").get("/api/v2.0/projects/team/logs").status_code == 403
    assert api(None).get("/api/v2.0/audit-logs").status_code == 401
    assert api("dev", PASSWORD).get("/api/v2.0/projects/team/logs?q=password=x").status_code in (
        400,
        403,
    )


@pytest.mark.live
def test_registry_events_pull_counts_and_graceful_shutdown(tmp_path):
    # Flushes only at exit: whatever reaches the database came through shutdown.
    server = BerthServer(
        tmp_path / "data", role="all", env={"BERTH_AUDIT_FLUSH_SECONDS": "3600"}
    ).start()
    try:
        server.create_projects(["aud"])
        reg = Remote(server.url)
        digest, _ = reg.push_image("aud/app", "v1")
        for _ in range(3):
            assert reg.http.get(f"{server.url}/v2/aud/app/manifests/v1").status_code == 200
        assert reg.http.delete(f"{server.url}/v2/aud/app/manifests/v1").status_code == 202
        anon = requests.get(f"{server.url}/service/token?service=harbor-registry")
        assert anon.status_code == 200
        bad = requests.get(
            f"{server.url}/service/token?service=harbor-registry", auth=("admin", "Wrong1234")
        )
        assert bad.status_code == 401
        server.stop()  # SIGTERM: a graceful shutdown
        server.start()
        # Pulls were buffered and flushed at shutdown; the push and the delete
        # reach the trail through their durable events, delivered by the worker.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = server.http.get(f"{server.url}/api/v2.0/projects/aud/logs?page_size=50").json()
            if len(logs) >= 6:
                break
            time.sleep(0.2)
        assert [(e["operation"], e["resource"]) for e in reversed(logs)] == [
            ("create", "aud"),
            ("push", "aud/app:v1"),
            ("pull", "aud/app:v1"),
            ("pull", "aud/app:v1"),
            ("pull", "aud/app:v1"),
            ("delete", "aud/app:v1"),
        ]
        logins = server.http.get(
            f"{server.url}/api/v2.0/audit-logs?q=operation=login,username=admin"
        ).json()
        assert {e["operation_result"] for e in logins} == {False}  # the failed one
        repo = server.http.get(f"{server.url}/api/v2.0/projects").json()
        assert any(p["name"] == "aud" for p in repo)
        check = server.manage(
            "shell",
            "--no-imports",
            "-v",
            "0",
            "-c",
            "from registry.models import Repository as R;"
            "r=R.objects.get(name='aud/app');print(r.pull_count, bool(r.last_pulled_at))",
        )
        assert check.stdout.split() == ["3", "True"]
        del digest
    finally:
        server.stop()


@pytest.mark.live
def test_buffered_events_are_written_in_the_background(tmp_path):
    server = BerthServer(tmp_path / "data", env={"BERTH_AUDIT_FLUSH_SECONDS": "0.2"}).start()
    try:
        server.create_projects(["bg"])
        reg = Remote(server.url)
        reg.push_image("bg/app", "v1")
        assert reg.http.get(f"{server.url}/v2/bg/app/manifests/v1").status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            logs = server.http.get(f"{server.url}/api/v2.0/projects/bg/logs").json()
            if any(e["operation"] == "pull" for e in logs):
                break
            time.sleep(0.1)
        assert any(e["operation"] == "pull" and e["username"] == ADMIN[0] for e in logs)
    finally:
        server.stop()


def test_buffered_events_are_stored_field_for_field(test_projects):
    """The buffer's writer binds rows itself (executemany): every field, the
    time to the microsecond, and the repository's pull count must come out as
    the ORM would have stored them, on SQLite and PostgreSQL alike."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.access import Actor
    from audit.events import Operation, Resource, Result
    from audit.services import discard, record_later
    from registry.models import Repository

    discard()
    Repository.objects.get_or_create(name="a/fields", defaults={"project_id": _project_id("a")})
    before = timezone.now()
    robot = Actor(kind="robot", name="robot$a+ci")
    record_later(
        actor=robot,
        operation=Operation.PULL,
        resource_type=Resource.ARTIFACT,
        resource="a/fields:v1",
        project="a",
        client_ip="2001:db8::7",
        pulled_repository="a/fields",
    )
    record_later(
        actor=robot,
        operation=Operation.PUSH,
        resource_type=Resource.ARTIFACT,
        resource="a/fields@sha256:" + "c" * 64,
        project="a",
        client_ip="10.0.0.9",
        result=Result.FAILURE,
    )
    assert flush() == 2
    rows = list(AuditEvent.objects.filter(project_name="a").order_by("id"))[-2:]
    pull, push = rows
    assert (pull.username, pull.actor_kind, pull.operation, pull.resource_type) == (
        "robot$a+ci",
        "robot",
        "pull",
        "artifact",
    )
    assert (pull.resource, pull.client_ip, pull.result, pull.detail) == (
        "a/fields:v1",
        "2001:db8::7",
        "success",
        None,
    )
    assert (push.operation, push.result, push.client_ip) == ("push", "failure", "10.0.0.9")
    assert pull.project_id == push.project_id == _project_id("a")  # named, then resolved
    assert before <= pull.occurred_at <= push.occurred_at <= before + timedelta(seconds=5)
    assert pull.occurred_at.tzinfo is not None
    repo = Repository.objects.get(name="a/fields")
    assert repo.pull_count == 1
    assert repo.last_pulled_at == pull.occurred_at


def _project_id(name: str) -> int:
    from accounts.models import Project

    return Project.objects.get(name=name).pk


def test_a_full_buffer_wakes_its_writer_once_not_on_every_event(monkeypatch):
    """Past FLUSH_SIZE events the writer is woken; every request thread calling
    Event.set while it catches up would contend for the event's lock."""
    import threading

    from accounts.access import Actor
    from audit import services
    from audit.events import Operation, Resource

    sets = []

    class CountingEvent(threading.Event):
        def set(self) -> None:
            sets.append(len(services._buffer))
            super().set()

    services.discard()
    monkeypatch.setattr(services._buffer, "_wake", CountingEvent())
    try:
        for i in range(3 * services.FLUSH_SIZE):
            services.record_later(
                actor=Actor(kind="robot", name="robot$a+ci"),
                operation=Operation.PULL,
                resource_type=Resource.ARTIFACT,
                resource=f"a/wake:v{i}",
                project="a",
            )
        assert sets == [services.FLUSH_SIZE]  # woken at the mark, not 1,000 times more
        services._buffer._wake.clear()  # what the writer does before it flushes
        services.record_later(
            actor=Actor(kind="robot", name="robot$a+ci"),
            operation=Operation.PULL,
            resource_type=Resource.ARTIFACT,
            resource="a/wake:again",
            project="a",
        )
        assert sets == [services.FLUSH_SIZE, 3 * services.FLUSH_SIZE + 1]
    finally:
        services.discard()


def test_a_new_project_of_a_deleted_ones_name_reads_none_of_its_history(team, v2):
    """Audit visibility follows the project (its id), not its name (issue 13.8)."""
    from accounts.models import Project
    from tests.registry.helpers import InProcess

    post(api("padmin"), "/api/v2.0/projects", {"project_name": "secret"})
    post(
        api("padmin"),
        "/api/v2.0/projects/secret/members",
        {"role_id": 2, "member_user": {"username": "dev"}},
    )
    InProcess(v2).push_image("secret/app", "v1")
    assert v2.get("/v2/secret/app/manifests/v1").status_code == 200  # a buffered pull
    flush()
    deliver()
    assert v2.delete("/v2/secret/app/manifests/v1").status_code == 202
    r = api("admin").delete("/api/v2.0/projects/secret/repositories/app")
    assert r.status_code == 200, r.content
    assert api("admin").delete("/api/v2.0/projects/secret").status_code == 200
    deliver()
    old = AuditEvent.objects.filter(project_name="secret")
    assert {"create", "push", "pull", "delete"} <= set(old.values_list("operation", flat=True))

    assert (
        post(api("outsider"), "/api/v2.0/projects", {"project_name": "secret"}).status_code == 201
    )
    new = Project.objects.get(name="secret")

    logs = api("outsider").get("/api/v2.0/projects/secret/logs").json()
    assert [(e["operation"], e["resource"]) for e in logs] == [("create", "secret")]
    everything = api("outsider").get("/api/v2.0/audit-logs").json()
    assert [(e["operation"], e["resource"]) for e in everything] == [("create", "secret")]
    assert old.filter(project_id=new.pk).count() == 1  # its own creation
    # The old project's history is still there for system readers.
    assert len(api("admin").get("/api/v2.0/audit-logs?page_size=100").json()) > len(everything)
