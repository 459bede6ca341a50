"""Executions: start, plan, run, stop — state in Berth's tables only.

A Celery message names an execution; the worker that takes it holds a lease
on it (renewed between chunks) and claims its tasks one at a time, each with
a lease of its own. A worker killed mid-copy leaves leases that expire: the
redelivered message (acks late) or the scheduler's tick (``tick``) runs the
execution again, which takes the expired task over and finishes it; the copy
is idempotent (what the destination has is skipped), so nothing is duplicated.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.access import SYSTEM, Actor, require_system
from audit.events import Operation as AuditOperation
from audit.events import Resource
from audit.services import record
from kit.cron import previous as cron_previous
from kit.errors import Conflict, Invalid, NotFound
from replication import filters as policy_filters
from replication.adapters.base import Adapter
from replication.adapters.local import LocalAdapter
from replication.engine import Copier, Stopped, chunk_for
from replication.models import FINAL, Execution, Operation, Policy, Status, Task, Trigger
from replication.services.endpoints import adapter_for

log = logging.getLogger("berth.replication")
LOG_LIMIT = 256 * 1024


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.BERTH_REPLICATION_LEASE_SECONDS)


# -- naming -------------------------------------------------------------------------


def destination_name(policy: Policy, source: str) -> str:
    """Harbor's flattening: ``dest_namespace_replace_count`` -1 replaces the
    whole namespace path with ``dest_namespace``, 0 prefixes it, N replaces the
    first N components."""
    namespace = policy.dest_namespace.strip("/")
    if not namespace:
        return source
    parts = source.split("/")
    count = policy.dest_namespace_replace_count
    if count < 0:
        return f"{namespace}/{parts[-1]}"
    kept = parts[min(count, len(parts) - 1) :]
    return "/".join([namespace, *kept])


# -- starting and stopping ---------------------------------------------------------------


def _send(execution_id: int) -> None:
    try:
        from celery import current_app

        current_app.send_task("replication.tasks.run_execution", args=[execution_id])
    except Exception:
        log.warning("could not queue execution %s; the tick runs it", execution_id, exc_info=True)


def _record(actor: Actor, operation: AuditOperation, execution: Execution, policy: str) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.REPLICATION,
        resource=policy,
        detail={"execution_id": execution.pk, "trigger": execution.trigger},
    )


def start(
    policy: Policy,
    *,
    trigger: str,
    actor: Actor,
    event_id: int | None = None,
    scope: list[dict[str, Any]] | None = None,
) -> Execution | None:
    """A new execution of ``policy`` (queued after commit), audited as
    ``actor``'s (Berth itself for scheduled and event-based runs); None when
    the policy runs one at a time and one is running, or the event already has one."""
    with transaction.atomic():
        if policy.single_active and policy.executions.exclude(status__in=FINAL).exists():
            return None
        try:
            with transaction.atomic():
                execution = Execution.objects.create(
                    policy=policy, trigger=trigger, event_id=event_id, scope=scope
                )
        except IntegrityError:
            return None  # this event's run exists (a redelivered batch)
        _record(actor, AuditOperation.CREATE, execution, policy.name)
        keep = settings.BERTH_REPLICATION_KEEP_EXECUTIONS
        old = list(
            policy.executions.filter(status__in=FINAL)
            .order_by("-id")
            .values_list("id", flat=True)[keep:]
        )
        if old:
            Execution.objects.filter(pk__in=old).delete()
        transaction.on_commit(lambda: _send(execution.pk))
    return execution


def execution_start(*, actor: Actor, policy_id: int) -> Execution:
    require_system(actor, "replication", "create")
    policy = Policy.objects.filter(pk=policy_id).first()
    if policy is None:
        raise NotFound(message=f"policy {policy_id} not found")
    if not policy.enabled:
        raise Invalid("the policy is disabled")
    execution = start(policy, trigger=Trigger.MANUAL, actor=actor)
    if execution is None:
        raise Conflict("the policy runs one execution at a time and one is running")
    return execution


def execution_get(*, actor: Actor, execution_id: int) -> Execution:
    require_system(actor, "replication", "read")
    found = Execution.objects.select_related("policy").filter(pk=execution_id).first()
    if found is None:
        raise NotFound(message=f"execution {execution_id} not found")
    return found


def execution_stop(*, actor: Actor, execution_id: int) -> None:
    """Ask the execution to stop: pending tasks stop now, a running one at its
    next chunk."""
    require_system(actor, "replication", "create")
    execution = execution_get(actor=actor, execution_id=execution_id)
    with transaction.atomic():
        _record(actor, AuditOperation.UPDATE, execution, execution.policy.name)
        Execution.objects.filter(pk=execution.pk).update(stop_requested=True)
        execution.tasks.filter(status=Status.PENDING).update(
            status=Status.STOPPED, ended_at=timezone.now()
        )
        if not execution.tasks.filter(status=Status.RUNNING).exists():
            _finish(execution.pk)


# -- planning ---------------------------------------------------------------------------


def adapters(policy: Policy) -> tuple[Adapter, Adapter]:
    local = LocalAdapter(policy_name=policy.name)
    if policy.src_endpoint is not None:
        return adapter_for(policy.src_endpoint), local
    assert policy.dest_endpoint is not None
    dst = adapter_for(policy.dest_endpoint)
    dst.for_writing()
    return local, dst


def plan(execution: Execution, src: Adapter) -> list[Task]:
    policy = execution.policy
    filters = policy_filters.parse(policy.filters)
    tasks: list[Task] = []
    if execution.scope is not None:
        for item in execution.scope:
            repo = item["repository"]
            if not policy_filters.repository_ok(filters, repo):
                continue
            refs = item["references"]
            if item["op"] == Operation.COPY:
                refs = [r for r in refs if r.startswith("sha256:")] + policy_filters.tags_kept(
                    filters, tuple(r for r in refs if not r.startswith("sha256:"))
                )
            if refs:
                tasks.append(
                    Task(
                        execution=execution,
                        operation=item["op"],
                        src_repository=repo,
                        dst_repository=destination_name(policy, repo),
                        references=refs,
                    )
                )
        return tasks
    for repo in src.repositories(named=policy_filters.literal_names(filters)):
        if not policy_filters.repository_ok(filters, repo):
            continue
        for artifact in src.artifacts(repo):
            if not policy_filters.artifact_ok(filters, artifact):
                continue
            tags = policy_filters.tags_kept(filters, artifact.tags)
            if tags:
                tasks.append(
                    Task(
                        execution=execution,
                        src_repository=repo,
                        dst_repository=destination_name(policy, repo),
                        references=tags,
                    )
                )
    return tasks


# -- running ----------------------------------------------------------------------------


def _claim_execution(execution_id: int, worker: str) -> bool:
    now = timezone.now()
    return bool(
        Execution.objects.filter(pk=execution_id)
        .exclude(status__in=FINAL)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(claimed_by=worker))
        .update(claimed_by=worker, lease_until=_lease(), status=Status.RUNNING)
    )


def _claim_task(execution_id: int, worker: str) -> Task | None:
    now = timezone.now()
    candidates = Task.objects.filter(execution_id=execution_id).filter(
        Q(status=Status.PENDING) | Q(status=Status.RUNNING, lease_until__lt=now)
    )
    for task in candidates.order_by("id")[:5]:
        taken = Task.objects.filter(
            pk=task.pk, status=task.status, lease_until=task.lease_until
        ).update(
            status=Status.RUNNING,
            claimed_by=worker,
            lease_until=_lease(),
            attempts=task.attempts + 1,
            started_at=task.started_at or now,
        )
        if taken:
            task.refresh_from_db()
            return task
    return None


def run(execution_id: int, *, worker: str | None = None) -> str | None:
    """Run an execution to its end (or until stopped); the final status, or
    None when another worker holds it."""
    worker = worker or worker_name()
    if not _claim_execution(execution_id, worker):
        return None
    execution = Execution.objects.select_related(
        "policy", "policy__src_endpoint", "policy__dest_endpoint"
    ).get(pk=execution_id)
    try:
        src, dst = adapters(execution.policy)
        if not execution.planned:
            tasks = plan(execution, src)
            with transaction.atomic():
                Task.objects.filter(execution=execution).delete()  # a plan that died midway
                Task.objects.bulk_create(tasks)
                Execution.objects.filter(pk=execution_id).update(planned=True, total=len(tasks))
    except Exception as exc:
        log.warning("execution %s: planning failed: %s", execution_id, exc)
        Execution.objects.filter(pk=execution_id).update(
            status=Status.FAILED,
            status_text=f"listing the source failed: {exc}"[:2000],
            ended_at=timezone.now(),
        )
        return Status.FAILED
    parallel = max(1, settings.BERTH_REPLICATION_PARALLEL)
    if connection.vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
        # An in-memory SQLite database (the in-process tests') is one shared
        # cache whose table locks fail other threads at once instead of making
        # them wait: one thread there. A file database (the embedded default,
        # WAL) and PostgreSQL take the threads.
        parallel = 1
    if parallel == 1:
        _work(execution, src, dst, worker)
    else:
        # Tasks are claimed one at a time from the table, so threads share the
        # work without coordinating; each closes its own database connection.
        with ThreadPoolExecutor(parallel, thread_name_prefix="replication") as pool:
            for future in [
                pool.submit(_work_thread, execution, src, dst, worker) for _ in range(parallel)
            ]:
                future.result()
    return _finish(execution_id)


def _work_thread(execution: Execution, src: Adapter, dst: Adapter, worker: str) -> None:
    try:
        _work(execution, src, dst, worker)
    finally:
        connections.close_all()


def _work(execution: Execution, src: Adapter, dst: Adapter, worker: str) -> None:
    execution_id = execution.pk
    while True:
        if Execution.objects.filter(pk=execution_id, stop_requested=True).exists():
            Task.objects.filter(execution_id=execution_id, status=Status.PENDING).update(
                status=Status.STOPPED, ended_at=timezone.now()
            )
            return
        task = _claim_task(execution_id, worker)
        if task is None:
            return
        run_task(task, execution, src, dst, worker)
        Execution.objects.filter(pk=execution_id).update(lease_until=_lease())


def _finish(execution_id: int) -> str:
    counts = dict(
        Task.objects.filter(execution_id=execution_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    left = counts.get(Status.PENDING, 0) + counts.get(Status.RUNNING, 0)
    execution = Execution.objects.get(pk=execution_id)
    failed, stopped = counts.get(Status.FAILED, 0), counts.get(Status.STOPPED, 0)
    if left:
        status = Status.RUNNING
    elif execution.stop_requested or stopped:
        status = Status.STOPPED
    elif failed:
        status = Status.FAILED
    else:
        status = Status.SUCCEEDED
    text = f"{failed} of {sum(counts.values())} tasks failed" if failed else ""
    Execution.objects.filter(pk=execution_id).update(
        status=status,
        status_text=text,
        succeeded=counts.get(Status.SUCCEEDED, 0),
        failed=failed,
        stopped=stopped,
        ended_at=None if left else timezone.now(),
        lease_until=None if left else timezone.now(),
    )
    return status


class TaskLog:
    """A task's log, written to its row as it grows (every chunk's heartbeat)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.lines: list[str] = [task.log] if task.log else []
        self.dirty = False

    def __call__(self, line: str) -> None:
        stamp = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.lines.append(f"{stamp} {line}\n")
        self.dirty = True

    def text(self) -> str:
        text = "".join(self.lines)
        return text if len(text) <= LOG_LIMIT else "…\n" + text[-LOG_LIMIT:]


def run_task(task: Task, execution: Execution, src: Adapter, dst: Adapter, worker: str) -> None:
    policy = execution.policy
    tlog = TaskLog(task)
    if task.attempts > 1:
        tlog(f"attempt {task.attempts} (taken over by {worker})")

    def heartbeat() -> bool:
        """Between chunks: renew the leases, save the log, see a stop."""
        fields: dict[str, Any] = {"lease_until": _lease(), "bytes_copied": copier.bytes_copied}
        if tlog.dirty:
            fields["log"] = tlog.text()
            tlog.dirty = False
        Task.objects.filter(pk=task.pk).update(**fields)
        Execution.objects.filter(pk=execution.pk).update(lease_until=_lease())
        return Execution.objects.filter(pk=execution.pk, stop_requested=True).exists()

    copier = Copier(
        src=src,
        dst=dst,
        log=tlog,
        should_stop=heartbeat,
        chunk=chunk_for(policy.speed_kb, settings.BERTH_REPLICATION_CHUNK_BYTES),
        speed_kb=policy.speed_kb,
        override=policy.override,
    )
    status = Status.SUCCEEDED
    try:
        if task.operation == Operation.DELETE:
            for reference in task.references:
                dst.manifest_delete(task.dst_repository, reference)
                tlog(f"deleted {task.dst_repository} {reference} (or it was not there)")
        else:
            tlog(f"copy {task.src_repository} {task.references} → {task.dst_repository}")
            changed = copier.copy(task.src_repository, task.dst_repository, list(task.references))
            tlog(
                f"done: {copier.blobs_copied} blobs copied ({copier.bytes_copied} bytes), "
                f"{copier.blobs_skipped} skipped, {copier.manifests_put} manifests put"
                + ("" if changed else "; nothing new")
            )
    except Stopped:
        status = Status.STOPPED
        tlog("stopped")
    except Exception as exc:
        status = Status.FAILED
        tlog(f"failed: {type(exc).__name__}: {exc}")
        log.info("replication task %s failed: %s", task.pk, exc)
    Task.objects.filter(pk=task.pk).update(
        status=status,
        log=tlog.text(),
        ended_at=timezone.now(),
        lease_until=None,
        bytes_copied=copier.bytes_copied,
    )


# -- the scheduler's tick --------------------------------------------------------------


def tick(*, now: datetime | None = None, send: Callable[[int], None] = _send) -> int:
    """Start the scheduled runs that are due (each cron time claimed once, on
    the policy's row) and re-queue executions whose worker is gone (an
    expired lease, or never taken). How many were started or re-queued."""
    now = now or timezone.now()
    started = 0
    for policy in Policy.objects.filter(enabled=True, trigger=Trigger.SCHEDULED).exclude(cron=""):
        try:
            due = cron_previous(policy.cron, now)
        except Invalid:
            log.warning("replication policy %s: its cron %r is not valid", policy.pk, policy.cron)
            continue
        since = policy.last_scheduled or policy.created_at
        if due <= since:
            continue
        claimed = Policy.objects.filter(pk=policy.pk, last_scheduled=policy.last_scheduled).update(
            last_scheduled=due
        )
        if claimed and start(policy, trigger=Trigger.SCHEDULED, actor=SYSTEM) is not None:
            started += 1
    grace = now - timedelta(seconds=settings.BERTH_REPLICATION_LEASE_SECONDS)
    stale = Execution.objects.exclude(status__in=FINAL).filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True, started_at__lt=grace)
    )
    for execution_id in stale.values_list("id", flat=True):
        send(execution_id)
        started += 1
    return started
