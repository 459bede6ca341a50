"""Registry content as rows: the database is the single source of truth.

Blob storage holds only content-addressed bytes; which repository may read which
blob, which manifest a tag names, and what a manifest references are all here.
Projects, the namespaces repositories live in, belong to ``accounts`` (identity
and access, the layer below).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Project


class Repository(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="repositories")
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    # Kept by the audit flusher (audit/services.py), off the pull's request path.
    # db_default: rows inserted by replicas still on older code get it too.
    pull_count = models.BigIntegerField(default=0, db_default=0)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("repository")
        verbose_name_plural = _("repositories")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Blob(models.Model):
    """Bytes known to storage, verified. Readable only through a RepositoryBlob."""

    digest = models.CharField(max_length=150, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by garbage collection, under the row's lock, once nothing links or
    # references the blob; never cleared: the row and its bytes are going
    # (docs/gc.md). Nothing links a blob in this state.
    deleting = models.BooleanField(default=False, db_default=False)

    class Meta:
        verbose_name = _("blob")
        verbose_name_plural = _("blobs")

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A blob linked into a repository: the only way a repository reads bytes."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="repository_links")
    created_at = models.DateTimeField(auto_now_add=True)
    # When a client was last told the blob is here (upload, mount, HEAD/GET):
    # garbage collection keeps an unreferenced link for its time window after.
    last_seen = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="repoblob_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.repository_id}:{self.blob_id}"


class Manifest(models.Model):
    """A manifest or index, bytes included (they are small), per repository."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="manifests")
    digest = models.CharField(max_length=150)
    media_type = models.CharField(max_length=255)
    artifact_type = models.CharField(max_length=255, blank=True, default="")
    payload = models.BinaryField()
    size = models.BigIntegerField()
    # The digest of the manifest this one refers to (OCI 1.1 `subject`), if any.
    subject_digest = models.CharField(max_length=150, blank=True, default="")
    annotations = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When it was last pushed (a re-push of the same bytes too): garbage
    # collection of untagged manifests keeps it for its time window after.
    last_seen = models.DateTimeField(default=timezone.now, db_default=Now())
    # Harbor's artifact labels (rows of ArtifactLabel; no column here).
    labels: models.ManyToManyField[Label, ArtifactLabel] = models.ManyToManyField(
        "Label", through="ArtifactLabel", related_name="artifacts", blank=True
    )

    class Meta:
        verbose_name = _("manifest")
        verbose_name_plural = _("manifests")
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="manifest_repo_digest"),
        ]
        indexes = [
            models.Index(fields=["repository", "subject_digest"], name="manifest_subject"),
        ]

    def __str__(self) -> str:
        return self.digest


class ManifestBlob(models.Model):
    """A blob (config or layer) a manifest references: what GC keeps alive."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="blob_refs")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="manifest_refs")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "blob"], name="manifestblob_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.manifest_id}->{self.blob_id}"


class ManifestChild(models.Model):
    """A manifest an index lists. PROTECT: a child cannot vanish under its index."""

    parent = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="child_refs")
    child = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="parent_refs")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "child"], name="manifestchild_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.parent_id}->{self.child_id}"


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tags")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="tag_repo_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    """A blob upload session. Its bytes live in storage under the session id;
    ``size`` is the truth about how many of them were accepted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A name, not a foreign key: a repository exists once it holds content, not
    # as soon as someone starts an upload into it.
    repository_name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    # sha256 of bytes [0, size): lets any process finish the upload without re-reading.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    owner = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner"], name="upload_owner"),
            models.Index(fields=["repository_name"], name="upload_repository"),
        ]

    def __str__(self) -> str:
        return str(self.id)


class ImmutableRule(models.Model):
    """A project's tag immutability rule (Harbor's ``ImmutableRule``): tags whose
    name matches ``tag_pattern``, in repositories whose name within the project
    matches ``repo_pattern``, can be created but never moved or deleted — not
    even by an admin. Patterns are doublestar globs (``*``, ``**``, ``?``,
    ``[a-z]``, ``{a,b}``); a decoration turns a pattern into an exclusion."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="immutable_rules")
    priority = models.IntegerField(default=0)
    disabled = models.BooleanField(default=False)
    tag_pattern = models.CharField(max_length=255)
    tag_decoration = models.CharField(max_length=16, default="matches")  # or "excludes"
    repo_pattern = models.CharField(max_length=255, default="**")
    repo_decoration = models.CharField(max_length=16, default="repoMatches")  # "repoExcludes"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("immutable rule")
        verbose_name_plural = _("immutable rules")
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.project_id}: {self.repo_pattern} / {self.tag_pattern}"


class Label(models.Model):
    """Harbor's label: global (scope ``g``, managed by system administrators,
    attachable to any artifact) or of one project (scope ``p``, managed by its
    admins and maintainers, attachable to that project's artifacts only).
    Replication and retention filter artifacts by label."""

    class Scope(models.TextChoices):
        GLOBAL = "g", "global"
        PROJECT = "p", "project"

    name = models.CharField(max_length=128)
    description = models.CharField(max_length=1024, blank=True, default="")
    color = models.CharField(max_length=32, blank=True, default="")
    scope = models.CharField(max_length=1, choices=Scope.choices)
    # Deleting a project deletes its labels (and their links to artifacts).
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="labels"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope="g", project__isnull=True)
                | models.Q(scope="p", project__isnull=False),
                name="label_scope_project",
            ),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(scope="g"), name="label_global_name"
            ),
            models.UniqueConstraint(
                fields=["project", "name"], condition=models.Q(scope="p"), name="label_project_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ArtifactLabel(models.Model):
    """A label attached to an artifact (a manifest of a repository)."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="label_links")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="artifact_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "label"], name="artifact_label_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.manifest_id}:{self.label_id}"


class ScheduledRun(models.Model):
    """A scheduled job's claim on one period: every replica may run the
    scheduler, and the first task of a period to insert this row runs, the
    others find it and skip (registry/services/schedule.py)."""

    name = models.CharField(max_length=200)
    # Seconds since the epoch divided by the job's interval.
    period = models.BigIntegerField()
    # The Celery task that claimed it: its retries and redeliveries run again.
    task_id = models.CharField(max_length=255)
    claimed_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")
        constraints = [
            models.UniqueConstraint(fields=["name", "period"], name="scheduled_run_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.period}"


class ProjectQuota(models.Model):
    """A project's hard limits (Harbor's quota, whose id is the project's id
    here): set by system administrators through ``PUT /quotas/{id}`` or at
    project creation; no row means unlimited. Read, never locked, by the pushes
    it limits; usage lives in ``ProjectBlob`` and ``QuotaUsage``
    (registry/services/quotas.py)."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, primary_key=True, related_name="quota"
    )
    # Bytes; -1 = unlimited (Harbor's types.UNLIMITED).
    storage_limit = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.project_id}: {self.storage_limit}"


class ProjectBlob(models.Model):
    """Content a project is charged for, each digest once however many of its
    repositories hold it (Harbor's ``project_blob``): the blobs linked into its
    repositories and its manifests. Inserted insert-or-nothing when content
    lands, deleted when the last of it leaves the project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="charged_blobs")
    digest = models.CharField(max_length=150)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "digest"], name="projectblob_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.digest}"


class QuotaUsage(models.Model):
    """A change of a project's storage usage, append-only: a project's usage is
    the sum of its rows. Every push that charges the project inserts a row and
    locks nothing another push needs (no single usage row to update); the
    reconcile job folds a project's rows into one (registry/services/quotas.py)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="usage_deltas")
    bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.project_id}: {self.bytes:+d}"


class RetentionPolicy(models.Model):
    """A project's tag retention policy (Harbor's, one per project): its rules as
    Harbor's API shows them, checked when written (registry/services/retention.py),
    and the cron of its schedule ("" = manual runs only)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="retention")
    algorithm = models.CharField(max_length=16, default="or")
    rules = models.JSONField(default=list)
    cron = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retention of {self.project_id}"


class RetentionExecution(models.Model):
    """A run of a retention policy, manual or scheduled, dry or not. Its state
    is here, so a restarted worker or broker loses nothing."""

    class Status(models.TextChoices):
        PENDING = "Pending"
        RUNNING = "Running"
        SUCCESS = "Success"
        ERROR = "Error"
        STOPPED = "Stopped"

    policy = models.ForeignKey(RetentionPolicy, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=16, default="MANUAL")  # or SCHEDULE
    dry_run = models.BooleanField(default=False)
    requested_by = models.CharField(max_length=255, blank=True, default="")
    stop_requested = models.BooleanField(default=False)
    start_time = models.DateTimeField(auto_now_add=True)
    end_time = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One active run per policy: a second trigger is a conflict.
            models.UniqueConstraint(
                fields=["policy"],
                condition=models.Q(status__in=["Pending", "Running"]),
                name="retention_one_active_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}#{self.pk} {self.status}"


class RetentionTask(models.Model):
    """One repository of a run: what it held, what it kept, and the log of each
    artifact's fate (Harbor's task log)."""

    execution = models.ForeignKey(
        RetentionExecution, on_delete=models.CASCADE, related_name="tasks"
    )
    repository = models.CharField(max_length=255)
    status = models.CharField(max_length=16, default="Running")
    total = models.IntegerField(default=0)
    retained = models.IntegerField(default=0)
    # The digests (with their tags) a dry run would delete, or a run deleted.
    deleted = models.JSONField(default=list)
    log = models.TextField(blank=True, default="")
    start_time = models.DateTimeField(auto_now_add=True)
    end_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.execution_id}:{self.repository}"


class ProjectStorage(Project):
    """A project as its quota page shows it (the admin's usage bars): limit and
    usage, changed through registry/services/quotas.py."""

    class Meta:
        proxy = True
        verbose_name = _("project quota")
        verbose_name_plural = _("project quotas")


class SystemJob(models.Model):
    """One run of a system job — garbage collection or the audit-log purge —
    (Harbor's GC / purge execution): its parameters, state, counts and log.
    One run of a kind at a time (a partial unique constraint)."""

    class Kind(models.TextChoices):
        GC = "gc", "garbage collection"
        PURGE_AUDIT = "purge_audit", "audit log purge"

    class Status(models.TextChoices):
        # Harbor's job_status strings.
        PENDING = "Pending"
        RUNNING = "Running"
        STOPPED = "Stopped"
        SUCCESS = "Success"
        ERROR = "Error"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    trigger = models.CharField(max_length=16, default="Manual")  # Manual / Schedule
    # Harbor's job_parameters: delete_untagged, workers, dry_run, time_window
    # (GC); audit_retention_hour, include_event_types, dry_run (purge).
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    stop_requested = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False)
    freed_bytes = models.BigIntegerField(default=0)
    deleted_blobs = models.BigIntegerField(default=0)
    deleted_manifests = models.BigIntegerField(default=0)
    deleted_links = models.BigIntegerField(default=0)
    deleted_uploads = models.BigIntegerField(default=0)
    deleted_events = models.BigIntegerField(default=0)
    log = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(status__in=["Pending", "Running"]),
                name="systemjob_one_active",
            ),
        ]
        indexes = [models.Index(fields=["kind", "-created_at"], name="systemjob_kind_time")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.status}"


class SystemJobSchedule(models.Model):
    """When a system job runs by itself (Harbor's schedule types: None, Hourly,
    Daily, Weekly, Custom with Harbor's 6-field cron) and with what parameters."""

    kind = models.CharField(max_length=16, choices=SystemJob.Kind.choices, unique=True)
    type = models.CharField(max_length=16, default="None")
    cron = models.CharField(max_length=128, blank=True, default="")
    parameters = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.kind}: {self.type} {self.cron}"
