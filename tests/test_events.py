"""Durable domain events (kit/events.py): written in the change's transaction,
delivered at least once, in order, to the consumers; a crash loses none."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from accounts.access import ANONYMOUS
from accounts.services import projects as project_services
from accounts.services.auth import actor_for_user
from audit.models import AuditEvent
from kit import events
from kit.models import DispatchLock, Event
from registry.services.manifests import manifest_delete
from tests.conftest import ADMIN, BerthServer
from tests.registry.helpers import InProcess, Remote

seen: list[tuple[str, str]] = []
fail_on: set[str] = set()


def recording(batch: list[Event]) -> None:
    """A consumer that records what it was handed (a database consumer writes
    in the dispatcher's transaction; this one keeps a list, reset per test)."""
    for event in batch:
        if event.kind in fail_on:
            raise RuntimeError(f"cannot take {event.kind}")
        seen.append((event.kind, event.key))


@pytest.fixture
def consumers(settings):
    seen.clear()
    fail_on.clear()
    settings.BERTH_EVENT_CONSUMERS = {
        "audit": "audit.consumers.record",
        "test": "tests.test_events.recording",
    }


def admin():
    from accounts.models import User

    return actor_for_user(User.objects.get(username=ADMIN[0]))


def test_emit_needs_the_change_s_transaction(transactional_db):
    with pytest.raises(events.OutsideTransaction):
        events.emit(events.PROJECT_CREATED, key="x", project="x")
    with pytest.raises(ValueError, match="unknown event kind"), transaction.atomic():
        events.emit("project.renamed", key="x")
    assert not Event.objects.exists()


def test_an_event_exists_exactly_when_its_change_does(bootstrapped, consumers):
    project_services.project_create(actor=admin(), name="kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        project_services.project_create(actor=admin(), name="rolled-back")
        raise RuntimeError("the change fails after the event was written")
    assert list(Event.objects.values_list("kind", "key")) == [("project.created", "kept")]


def test_services_emit_and_consumers_get_every_event_once_in_order(v2, consumers):
    actor = admin()
    project = project_services.project_create(actor=actor, name="evt")
    from accounts.models import User

    member = project_services.member_add(
        actor=actor,
        project=project,
        user_id=None,
        username=User.objects.create(username="dev").username,
        role_id=2,
    )
    project_services.member_update(actor=actor, project=project, member_id=member.pk, role_id=3)
    InProcess(v2).push_image("evt/app", "v1")
    InProcess(v2).push_image("evt/app", "v2")
    manifest_delete(repository_name="evt/app", reference="v1", actor=actor, client="10.1.2.3")
    project_services.member_remove(actor=actor, project=project, member_id=member.pk)

    assert events.deliver(batch=3) == 7
    assert seen == [
        ("project.created", "evt"),
        ("member.added", "evt"),
        ("member.updated", "evt"),
        ("manifest.pushed", "evt/app"),
        ("manifest.pushed", "evt/app"),
        ("tag.deleted", "evt/app"),
        ("member.removed", "evt"),
    ]
    runs = DispatchLock.objects.get().runs
    assert events.deliver() == 0  # nothing twice
    assert DispatchLock.objects.get().runs == runs  # and an idle run writes nothing
    assert seen[-1] == ("member.removed", "evt")
    pushed = Event.objects.filter(kind="manifest.pushed").first()
    assert pushed.payload["tags"] == ["v1"] and pushed.payload["digest"].startswith("sha256:")
    # The /v2 push and delete carried their audit entries: written once, on delivery.
    trail = AuditEvent.objects.filter(resource_type="artifact").order_by("occurred_at", "id")
    assert [(e.operation, e.resource, e.username) for e in trail] == [
        ("push", "evt/app:v1", "admin"),
        ("push", "evt/app:v2", "admin"),
        ("delete", "evt/app:v1", "admin"),
    ]
    assert trail.last().client_ip == "10.1.2.3"


def test_a_failing_consumer_holds_the_batch_and_gets_it_again(v2, consumers):
    InProcess(v2).push_image("library/app", "v1")
    project_services.project_create(actor=admin(), name="later")
    fail_on.add("project.created")

    assert events.deliver() == 0
    assert seen == [("manifest.pushed", "library/app")]  # handed, then rolled back with the batch
    held = Event.objects.order_by("id")
    assert [(e.attempts, e.delivered_at) for e in held] == [(1, None), (1, None)]
    assert "cannot take project.created" in held.last().last_error
    assert not AuditEvent.objects.filter(operation="push").exists()  # audit's write rolled back

    fail_on.clear()
    seen.clear()
    assert events.deliver() == 2
    assert seen == [("manifest.pushed", "library/app"), ("project.created", "later")]
    assert AuditEvent.objects.filter(operation="push").count() == 1
    assert events.undelivered() == 0


def test_anonymous_changes_carry_no_username(v2, consumers):
    InProcess(v2).push_image("library/app", "v1")
    manifest_delete(repository_name="library/app", reference="v1", actor=ANONYMOUS)
    events.deliver()
    deleted = AuditEvent.objects.get(operation="delete")
    assert (deleted.username, deleted.actor_kind) == ("", "anonymous")


@pytest.mark.live
def test_a_killed_server_loses_no_event(tmp_path):
    """Pushes acknowledged, then web and worker killed with SIGKILL (mid-delivery
    or before it): after a restart every push reaches the audit trail, once."""
    server = BerthServer(tmp_path / "data", role="all").start()
    try:
        server.create_projects(["crash"])
        reg = Remote(server.url)
        tags = [f"v{i}" for i in range(12)]
        for tag in tags:
            reg.push_image("crash/app", tag)
        server.kill()
        server.start()
        pushes: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(pushes) < len(tags):
            logs = server.http.get(
                f"{server.url}/api/v2.0/projects/crash/logs?q=operation=push&page_size=100"
            ).json()
            pushes = [e["resource"] for e in logs]
            time.sleep(0.2)
        assert sorted(pushes) == sorted(f"crash/app:{tag}" for tag in tags)
    finally:
        server.stop()
