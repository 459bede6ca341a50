"""Replication's rows: endpoints (Harbor's "registries"), policies, executions
and their tasks, and the marks on what arrived by replication.

Everything an execution needs to be resumed lives here (DESIGN §2.4): a Celery
message only names a task row, which a worker claims with a lease; a worker
killed mid-copy leaves a lease that expires, and the next claim finishes it.
"""

from __future__ import annotations

from django.db import models


class EndpointType(models.TextChoices):
    BERTH = "berth", "Berth"
    HARBOR = "harbor", "Harbor"
    DOCKER_REGISTRY = "docker-registry", "Docker Registry (OCI Distribution)"
    DOCKER_HUB_LIKE = "docker-hub", "Token registry without catalog (Docker Hub-like)"


class CredentialType(models.TextChoices):
    # Harbor's names: "basic" is a user and password sent as Basic or traded
    # at the registry's token service; "oauth" a bearer token sent as is.
    BASIC = "basic", "Basic / token service"
    OAUTH = "oauth", "Bearer token"


class Health(models.TextChoices):
    UNKNOWN = "unknown", "unknown"
    HEALTHY = "healthy", "healthy"
    UNHEALTHY = "unhealthy", "unhealthy"


class Endpoint(models.Model):
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    url = models.URLField(max_length=1000)
    type = models.CharField(max_length=32, choices=EndpointType.choices)
    credential_type = models.CharField(
        max_length=16, choices=CredentialType.choices, default=CredentialType.BASIC
    )
    access_key = models.CharField(max_length=255, blank=True, default="")
    # The secret sealed (kit/sealed.py); never returned.
    access_secret_sealed = models.TextField(blank=True, default="")
    insecure = models.BooleanField(default=False)  # skip TLS verification
    ca_pem = models.TextField(blank=True, default="")  # an extra CA bundle, PEM
    status = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    status_text = models.CharField(max_length=500, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Trigger(models.TextChoices):
    MANUAL = "manual", "manual"
    SCHEDULED = "scheduled", "scheduled"
    EVENT_BASED = "event_based", "event based"


class Policy(models.Model):
    """A push policy has no source endpoint (the local Berth is the source); a
    pull policy has no destination endpoint."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    src_endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dest_endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dest_namespace = models.CharField(max_length=255, blank=True, default="")
    # Harbor's flattening: -1 replaces the whole namespace path with
    # dest_namespace, 0 keeps it, N drops the first N components.
    dest_namespace_replace_count = models.IntegerField(default=-1)
    # [{"type": "name"|"tag"|"label"|"resource", "value": ..., "decoration":
    #   "matches"|"excludes", "kind": "doublestar"|"regex"}]
    filters = models.JSONField(default=list, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    cron = models.CharField(max_length=100, blank=True, default="")
    replicate_deletion = models.BooleanField(default=False)
    override = models.BooleanField(default=True)
    speed_kb = models.IntegerField(default=-1)  # KB/s; -1 or 0: unlimited
    single_active = models.BooleanField(default=False)
    copy_by_chunk = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    creator = models.CharField(max_length=255, blank=True, default="")
    # The last cron minute a scheduled run was started for (claimed once).
    last_scheduled = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name

    @property
    def is_push(self) -> bool:
        return self.src_endpoint_id is None


class Status(models.TextChoices):
    PENDING = "Pending", "pending"
    RUNNING = "InProgress", "running"
    SUCCEEDED = "Succeed", "succeeded"
    FAILED = "Failed", "failed"
    STOPPED = "Stopped", "stopped"


FINAL = (Status.SUCCEEDED, Status.FAILED, Status.STOPPED)


class Execution(models.Model):
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_text = models.TextField(blank=True, default="")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    # An event-based run names the event that started it (one run per event).
    event_id = models.BigIntegerField(null=True, blank=True)
    stop_requested = models.BooleanField(default=False)
    # What an event-based run is about ([{"op": "copy"|"delete", "repository",
    # "references"}]); null: everything the policy selects.
    scope = models.JSONField(null=True, blank=True)
    planned = models.BooleanField(default=False)
    # The worker running it and until when (renewed while it works): an
    # expired lease is a worker gone, and the next run takes the execution over.
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    total = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    stopped = models.IntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["policy", "status"], name="repl_exec_policy_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "event_id"],
                condition=models.Q(event_id__isnull=False),
                name="repl_exec_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}#{self.pk}"


class Operation(models.TextChoices):
    COPY = "copy", "copy"
    DELETE = "deletion", "deletion"


class Task(models.Model):
    """One artifact of an execution: ``src_resource`` ``repo:tag`` or
    ``repo@digest`` → ``dst_resource``."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="tasks")
    operation = models.CharField(max_length=16, choices=Operation.choices, default=Operation.COPY)
    resource_type = models.CharField(max_length=32, default="image")
    src_repository = models.CharField(max_length=500)
    dst_repository = models.CharField(max_length=500)
    # The tags (or the digest when untagged) to copy or delete.
    references = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    log = models.TextField(blank=True, default="")
    attempts = models.IntegerField(default=0)
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    bytes_copied = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["execution", "status"], name="repl_task_exec_status")]

    def __str__(self) -> str:
        return f"{self.src_repository} → {self.dst_repository}"

    @property
    def src_resource(self) -> str:
        return f"{self.src_repository}:[{','.join(self.references)}]"

    @property
    def dst_resource(self) -> str:
        return f"{self.dst_repository}:[{','.join(self.references)}]"


class Arrival(models.Model):
    """A manifest that arrived in this Berth by replication (pull, or another
    Berth's push seen through its event): event-based push policies never send
    it back, so master↔master topologies do not ping-pong."""

    repository_name = models.CharField(max_length=500)
    digest = models.CharField(max_length=100)
    policy_name = models.CharField(max_length=255, blank=True, default="")
    arrived_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository_name", "digest"], name="repl_arrival_once")
        ]

    def __str__(self) -> str:
        return f"{self.repository_name}@{self.digest}"
