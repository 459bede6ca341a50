"""Executions between this Berth (in-process) and a real Distribution: push
and pull policies, event-based triggers from the durable events, deletion
sync, incremental reruns, a scheduled run, and a killed worker's task taken
over once its lease expires."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import pytest
from django.utils import timezone

from accounts.access import SYSTEM
from kit import events
from kit.models import Event
from replication.adapters.http import Auth
from replication.adapters.registry import RegistryAdapter
from replication.models import Arrival, Endpoint, Execution, Policy, Status, Task
from replication.services import executions
from tests.registry.helpers import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    InProcess,
    artifact,
    descriptor,
    sha256,
)
from tests.replication.conftest import DIST_USER, push_big_blob, remote

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dist_endpoint(distribution: Any, test_projects: Any, settings: Any) -> Endpoint:
    from kit import sealed

    settings.BERTH_REPLICATION_RETRIES = 1
    settings.BERTH_REPLICATION_BACKOFF_SECONDS = 0.01
    return Endpoint.objects.create(
        name="dist",
        url=distribution.url,
        type="docker-registry",
        access_key=DIST_USER[0],
        access_secret_sealed=sealed.seal(DIST_USER[1]),
    )


@pytest.fixture
def dist(distribution: Any) -> RegistryAdapter:
    return RegistryAdapter(distribution.url, auth=Auth(*DIST_USER))


def run_manual(policy: Policy) -> Execution:
    execution = executions.start(policy, trigger="manual", actor=SYSTEM)
    assert execution is not None
    executions.run(execution.pk)
    execution.refresh_from_db()
    return execution


def test_push_policy_with_filters_flattening_and_an_incremental_rerun(
    v2: Any, dist_endpoint: Endpoint, dist: RegistryAdapter
) -> None:
    pusher = InProcess(v2)
    web, _ = pusher.push_image("app/team/web", "v1")
    pusher.push_image("app/team/web", "dev-1")
    api, _ = pusher.push_image("app/api", "v2")
    pusher.push_image("a/other", "v1")
    policy = Policy.objects.create(
        name="push",
        dest_endpoint=dist_endpoint,
        dest_namespace="mirror",
        dest_namespace_replace_count=1,
        filters=[
            {"type": "name", "value": "app/**", "decoration": "matches", "kind": "doublestar"},
            {"type": "tag", "value": "^v[0-9]+$", "decoration": "matches", "kind": "regex"},
        ],
    )
    first = run_manual(policy)
    assert (first.status, first.total, first.succeeded) == (Status.SUCCEEDED, 2, 2)
    assert dist.manifest_digest("mirror/team/web", "v1") == web
    assert dist.manifest_digest("mirror/api", "v2") == api
    assert dist.manifest_digest("mirror/team/web", "dev-1") is None
    assert "a/other" not in " ".join(dist.repositories())

    second = run_manual(policy)
    assert (second.status, second.total) == (Status.SUCCEEDED, 2)
    logs = list(Task.objects.filter(execution=second).values_list("log", flat=True))
    assert all("nothing new" in log for log in logs), logs
    assert sum(Task.objects.filter(execution=second).values_list("bytes_copied", flat=True)) == 0


def test_pull_policy_marks_what_arrived(
    v2: Any, distribution: Any, dist_endpoint: Endpoint
) -> None:
    digest, _ = remote(distribution.url, DIST_USER).push_image("upstream/tool", "1.0")
    policy = Policy.objects.create(
        name="pull",
        src_endpoint=dist_endpoint,
        dest_namespace="app",
        filters=[{"type": "name", "value": "upstream/tool"}],
    )
    execution = run_manual(policy)
    assert execution.status == Status.SUCCEEDED, list(Task.objects.values_list("log", flat=True))
    r = v2.get("/v2/app/tool/manifests/1.0")
    assert r.status_code == 200
    assert sha256(r.content) == digest
    assert Arrival.objects.filter(repository_name="app/tool", digest=digest).exists()


def test_event_based_push_follows_pushes_and_deletes_but_not_arrivals(
    v2: Any, dist_endpoint: Endpoint, dist: RegistryAdapter
) -> None:
    policy = Policy.objects.create(
        name="follow",
        dest_endpoint=dist_endpoint,
        trigger="event_based",
        replicate_deletion=True,
    )
    events.deliver()
    pusher = InProcess(v2)
    digest, _ = pusher.push_image("app/live", "v1")
    events.deliver()
    execution = Execution.objects.get(policy=policy)
    assert (execution.trigger, execution.scope) == (
        "event_based",
        [{"op": "copy", "repository": "app/live", "references": ["v1"]}],
    )
    executions.run(execution.pk)
    assert dist.manifest_digest("app/live", "v1") == digest

    # A redelivered batch starts nothing more.
    Event.objects.update(delivered_at=None)
    events.deliver()
    assert Execution.objects.filter(policy=policy).count() == 1

    # What arrived by replication is not sent on (master ↔ master).
    arrived, _ = pusher.push_image("app/arrived", "v1")
    Arrival.objects.create(repository_name="app/arrived", digest=arrived)
    before = Execution.objects.count()
    events.deliver()
    assert Execution.objects.count() == before

    assert v2.delete(f"/v2/app/live/manifests/{digest}").status_code == 202
    events.deliver()
    deletion = Execution.objects.filter(policy=policy).order_by("-id").first()
    assert deletion is not None
    assert deletion.scope == [{"op": "deletion", "repository": "app/live", "references": [digest]}]
    executions.run(deletion.pk)
    assert dist.manifest_digest("app/live", "v1") is None


def test_a_referrer_pushed_after_its_subject_follows_it(
    v2: Any, dist_endpoint: Endpoint, dist: RegistryAdapter
) -> None:
    Policy.objects.create(name="follow", dest_endpoint=dist_endpoint, trigger="event_based")
    pusher = InProcess(v2)
    subject, body = pusher.push_image("app/signed", "v1")
    events.deliver()
    executions.run(Execution.objects.get().pk)
    assert dist.manifest_digest("app/signed", "v1") == subject

    sbom, blobs = artifact(body, "application/vnd.example.sbom", b"sbom")
    pusher.push("app/signed", sha256(sbom), sbom, blobs)
    events.deliver()
    second = Execution.objects.order_by("-id").first()
    assert second is not None
    assert second.scope == [{"op": "copy", "repository": "app/signed", "references": [subject]}]
    assert executions.run(second.pk) == Status.SUCCEEDED
    assert dist.manifest_digest("app/signed", sha256(sbom)) == sha256(sbom)


def test_a_task_whose_worker_died_is_taken_over_after_its_lease(
    v2: Any, dist_endpoint: Endpoint, dist: RegistryAdapter, settings: Any
) -> None:
    settings.BERTH_REPLICATION_LEASE_SECONDS = 30
    digest, _ = InProcess(v2).push_image("app/orphan", "v1", layers=[os.urandom(100_000)])
    policy = Policy.objects.create(name="p", dest_endpoint=dist_endpoint)
    execution = executions.start(policy, trigger="manual", actor=SYSTEM)
    assert execution is not None
    src, _ = executions.adapters(policy)
    tasks = executions.plan(execution, src)
    Task.objects.bulk_create(tasks)
    # A worker took the execution and its task, then was killed: its leases stand.
    past = timezone.now() - datetime.timedelta(seconds=1)
    future = timezone.now() + datetime.timedelta(seconds=30)
    Execution.objects.filter(pk=execution.pk).update(
        planned=True, total=1, status=Status.RUNNING, claimed_by="dead:1:1", lease_until=future
    )
    Task.objects.update(
        status=Status.RUNNING, claimed_by="dead:1:1", lease_until=future, attempts=1
    )

    assert executions.run(execution.pk, worker="alive:2:2") is None  # still leased
    sent: list[int] = []
    assert executions.tick(send=sent.append) == 0
    Execution.objects.filter(pk=execution.pk).update(lease_until=past)
    Task.objects.update(lease_until=past)
    assert executions.tick(send=sent.append) == 1
    assert sent == [execution.pk]
    assert executions.run(execution.pk, worker="alive:2:2") == Status.SUCCEEDED
    task = Task.objects.get()
    assert (task.attempts, task.claimed_by) == (2, "alive:2:2")
    assert "attempt 2 (taken over by alive:2:2)" in task.log
    assert dist.manifest_digest("app/orphan", "v1") == digest


def test_a_scheduled_policy_runs_once_per_cron_time(v2: Any, dist_endpoint: Endpoint) -> None:
    InProcess(v2).push_image("app/cron", "v1")
    policy = Policy.objects.create(
        name="hourly", dest_endpoint=dist_endpoint, trigger="scheduled", cron="0 0 * * * *"
    )
    Policy.objects.filter(pk=policy.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=2)
    )
    sent: list[int] = []
    assert executions.tick(send=sent.append) == 1
    assert executions.tick(send=sent.append) == 0  # this hour's run is claimed
    execution = Execution.objects.get(policy=policy)
    assert execution.trigger == "scheduled"
    assert executions.run(execution.pk) == Status.SUCCEEDED


def test_a_source_artifact_deleted_mid_run_fails_its_task_only(
    v2: Any, dist_endpoint: Endpoint, dist: RegistryAdapter
) -> None:
    pusher = InProcess(v2)
    kept, _ = pusher.push_image("app/kept", "v1")
    gone, _ = pusher.push_image("app/gone", "v1")
    policy = Policy.objects.create(name="p", dest_endpoint=dist_endpoint)
    execution = executions.start(policy, trigger="manual", actor=SYSTEM)
    assert execution is not None
    src, _ = executions.adapters(policy)
    Task.objects.bulk_create(executions.plan(execution, src))
    Execution.objects.filter(pk=execution.pk).update(planned=True, total=2)
    # Deleted after the plan listed it, before its task ran.
    assert v2.delete(f"/v2/app/gone/manifests/{gone}").status_code == 202

    assert executions.run(execution.pk) == Status.FAILED
    execution.refresh_from_db()
    assert (execution.succeeded, execution.failed, execution.status_text) == (
        1,
        1,
        "1 of 2 tasks failed",
    )
    failed = Task.objects.get(execution=execution, status=Status.FAILED)
    assert failed.src_repository == "app/gone"
    assert "failed: NotFound: app/gone:v1 is not in the source" in failed.log
    assert dist.manifest_digest("app/kept", "v1") == kept
    assert dist.manifest_digest("app/gone", "v1") is None


def test_a_large_layer_through_a_speed_limit_keeps_to_it(
    v2: Any, distribution: Any, dist_endpoint: Endpoint
) -> None:
    """A pull policy limited to 16 MiB/s copies a 256 MiB layer (BERTH_REPL_BIG_MIB
    for more) from Distribution: the task's own counters (bytes copied, its
    start and end) show a rate at or under the limit. An upper bound only: a
    slower machine lowers the rate, never raises it; without the limiter a
    machine faster than the limit breaks it."""
    size = int(os.environ.get("BERTH_REPL_BIG_MIB", "256")) << 20
    speed_kb = 16 * 1024
    layer = push_big_blob(distribution.url, DIST_USER, "upstream/big", size)
    pusher = remote(distribution.url, DIST_USER)
    config = b'{"architecture": "amd64"}'
    pusher.put_blob("upstream/big", config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": size}],
        }
    ).encode()
    assert pusher.put_manifest("upstream/big", "v1", manifest).status_code == 201
    policy = Policy.objects.create(
        name="slow-pull",
        src_endpoint=dist_endpoint,
        dest_namespace="app",
        filters=[{"type": "name", "value": "upstream/big"}],
        speed_kb=speed_kb,
    )
    execution = run_manual(policy)
    (task,) = Task.objects.filter(execution=execution)
    assert execution.status == Status.SUCCEEDED, task.log
    assert f"copied blob {layer} ({size} bytes)" in task.log
    assert task.bytes_copied == size + len(config)
    assert task.started_at is not None and task.ended_at is not None
    elapsed = (task.ended_at - task.started_at).total_seconds()
    rate = task.bytes_copied / elapsed
    print(f"copied {size >> 20} MiB in {elapsed:.1f} s: {rate / 2**20:.1f} MiB/s (limit 16)")
    assert rate <= speed_kb * 1024, (rate, elapsed)
    r = v2.head(f"/v2/app/big/blobs/{layer}")
    assert (r.status_code, int(r["Content-Length"])) == (200, size)
