"""Event-based push policies as a consumer of durable events
(``BERTH_EVENT_CONSUMERS``): a push, a tag delete or an artifact delete in this
Berth starts one execution per event-based policy and batch of events, scoped
to what the events name. Runs in the dispatcher's transaction and writes rows
only (the copy runs after commit, in its own Celery task); a redelivered batch
finds its executions already there (one per policy and first event).

A manifest that arrived by replication (``Arrival``) is not sent on: two
Berths pushing to each other do not ping-pong. A push that arrives over
``/v2`` from another Berth's replication is sent back only as a check that
copies nothing (the destination has that digest under that tag), so the loop
ends there too; deletes end the same way (a delete of what is gone is a no-op).
"""

from __future__ import annotations

from typing import Any

from accounts.access import SYSTEM
from kit import events as kinds
from kit.models import Event
from registry.models import Manifest
from replication.models import Arrival, Operation, Policy, Trigger
from replication.services.executions import start


def _scopes(events: list[Event]) -> list[dict[str, Any]]:
    pushed = [
        (e.payload.get("repository", ""), e.payload.get("digest", ""))
        for e in events
        if e.kind == kinds.MANIFEST_PUSHED
    ]
    arrived: set[tuple[str, str]] = set()
    subjects: dict[tuple[str, str], str] = {}
    if pushed:
        repos, digests = {r for r, _ in pushed}, {d for _, d in pushed}
        arrived = set(
            Arrival.objects.filter(repository_name__in=repos, digest__in=digests).values_list(
                "repository_name", "digest"
            )
        )
        # Referrers pushed by digest after their subject: they travel with it.
        subjects = {
            (repo, digest): subject
            for repo, digest, subject in Manifest.objects.filter(
                repository__name__in=repos, digest__in=digests
            )
            .exclude(subject_digest="")
            .values_list("repository__name", "digest", "subject_digest")
        }
    scope: list[dict[str, Any]] = []
    for event in events:
        p = event.payload
        repo = p.get("repository")
        if not repo:
            continue
        if event.kind == kinds.MANIFEST_PUSHED:
            key = (repo, p.get("digest", ""))
            if key in arrived:
                continue
            tags = list(p.get("tags") or [])
            if tags:
                scope.append({"op": Operation.COPY, "repository": repo, "references": tags})
            elif key in subjects:
                scope.append(
                    {"op": Operation.COPY, "repository": repo, "references": [subjects[key]]}
                )
        elif event.kind == kinds.TAG_DELETED and p.get("tag"):
            scope.append({"op": Operation.DELETE, "repository": repo, "references": [p["tag"]]})
        elif event.kind == kinds.ARTIFACT_DELETED and p.get("digest"):
            scope.append({"op": Operation.DELETE, "repository": repo, "references": [p["digest"]]})
    return scope


def trigger(events: list[Event]) -> None:
    policies = list(
        Policy.objects.filter(
            enabled=True, trigger=Trigger.EVENT_BASED, src_endpoint__isnull=True
        ).select_related("dest_endpoint")
    )
    if not policies or not events:
        return
    scope = _scopes(events)
    if not scope:
        return
    for policy in policies:
        mine = [s for s in scope if s["op"] == Operation.COPY or policy.replicate_deletion]
        if mine:
            start(
                policy,
                trigger=Trigger.EVENT_BASED,
                actor=SYSTEM,
                event_id=events[0].pk,
                scope=mine,
            )
