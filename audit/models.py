"""The audit trail: append-only rows, who did what to which resource, when."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.events import Operation, Resource, Result


class AuditEvent(models.Model):
    occurred_at = models.DateTimeField(db_index=True)
    username = models.CharField(max_length=255)  # "" for anonymous
    actor_kind = models.CharField(max_length=16, default="user")
    operation = models.CharField(max_length=16, choices=Operation.choices)
    resource_type = models.CharField(max_length=32, choices=Resource.choices)
    resource = models.CharField(max_length=512)
    # The project the resource belongs to: its name as it was shown, and its id,
    # which decides who may read the row (a new project of a deleted one's name
    # is another project). A plain column, not a foreign key: the history stays
    # when the project goes. NULL: no project, or one that could not be told
    # apart (rows from before the column; only system readers see those).
    project_name = models.CharField(max_length=255, blank=True, default="")
    project_id = models.BigIntegerField(null=True, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.SUCCESS)
    client_ip = models.CharField(max_length=64, blank=True, default="")
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["project_name", "-occurred_at"], name="audit_project_time"),
            models.Index(fields=["project_id", "-occurred_at"], name="audit_project_id_time"),
            models.Index(fields=["username", "-occurred_at"], name="audit_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.operation} {self.resource_type} {self.resource}"
