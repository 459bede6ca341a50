"""Audit operations and resource types, declared once."""

from __future__ import annotations

from django.db import models


class Operation(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PULL = "pull"
    PUSH = "push"
    LOGIN = "login"


class Resource(models.TextChoices):
    ARTIFACT = "artifact"
    TAG = "tag"
    REPOSITORY = "repository"
    PROJECT = "project"
    MEMBER = "member"
    USER = "user"
    ROBOT = "robot"
    CONFIGURATION = "configuration"
    SESSION = "session"
    IMMUTABLE_RULE = "immutable_tag_rule"
    QUOTA = "quota"
    LABEL = "label"
    ARTIFACT_LABEL = "artifact_label"
    IDENTITY_PROVIDER = "identity_provider"
    USER_GROUP = "user_group"
    ACCESS_TOKEN = "access_token"  # noqa: S105 - a resource type
    RETENTION = "tag_retention"
    # Replication. Harbor 2.13's audit-log-ext records none of these (its
    # EventTypes stop at update_project): the names are its RBAC resources
    # (registry, replication-policy, replication) spelt as its event types
    # are, and the operations its HTTP methods map to (start is POST: create;
    # stop is PUT: update).
    REGISTRY = "registry"
    REPLICATION_POLICY = "replication_policy"
    REPLICATION = "replication"


class Result(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"


# What Berth records, as Harbor's audit log event types (``{operation}_{resource
# type}``, ``GET /auditlog-exts/events``). Declared here, beside the vocabulary;
# tests/audit/test_event_types.py checks every row the services write is one.
RECORDED: tuple[tuple[Operation, Resource], ...] = (
    (Operation.PUSH, Resource.ARTIFACT),
    (Operation.PULL, Resource.ARTIFACT),
    (Operation.CREATE, Resource.ARTIFACT),
    (Operation.DELETE, Resource.ARTIFACT),
    (Operation.CREATE, Resource.TAG),
    (Operation.DELETE, Resource.TAG),
    (Operation.UPDATE, Resource.REPOSITORY),
    (Operation.DELETE, Resource.REPOSITORY),
    (Operation.CREATE, Resource.PROJECT),
    (Operation.UPDATE, Resource.PROJECT),
    (Operation.DELETE, Resource.PROJECT),
    (Operation.CREATE, Resource.MEMBER),
    (Operation.UPDATE, Resource.MEMBER),
    (Operation.DELETE, Resource.MEMBER),
    (Operation.CREATE, Resource.USER),
    (Operation.UPDATE, Resource.USER),
    (Operation.DELETE, Resource.USER),
    (Operation.CREATE, Resource.ROBOT),
    (Operation.UPDATE, Resource.ROBOT),
    (Operation.DELETE, Resource.ROBOT),
    (Operation.CREATE, Resource.ACCESS_TOKEN),
    (Operation.DELETE, Resource.ACCESS_TOKEN),
    (Operation.UPDATE, Resource.CONFIGURATION),
    (Operation.UPDATE, Resource.QUOTA),
    (Operation.CREATE, Resource.IMMUTABLE_RULE),
    (Operation.UPDATE, Resource.IMMUTABLE_RULE),
    (Operation.DELETE, Resource.IMMUTABLE_RULE),
    (Operation.CREATE, Resource.RETENTION),
    (Operation.UPDATE, Resource.RETENTION),
    (Operation.DELETE, Resource.RETENTION),
    (Operation.LOGIN, Resource.SESSION),
    (Operation.CREATE, Resource.IDENTITY_PROVIDER),
    (Operation.UPDATE, Resource.IDENTITY_PROVIDER),
    (Operation.DELETE, Resource.IDENTITY_PROVIDER),
    (Operation.CREATE, Resource.USER_GROUP),
    (Operation.UPDATE, Resource.USER_GROUP),
    (Operation.DELETE, Resource.USER_GROUP),
    (Operation.CREATE, Resource.REGISTRY),
    (Operation.UPDATE, Resource.REGISTRY),
    (Operation.DELETE, Resource.REGISTRY),
    (Operation.CREATE, Resource.REPLICATION_POLICY),
    (Operation.UPDATE, Resource.REPLICATION_POLICY),
    (Operation.DELETE, Resource.REPLICATION_POLICY),
    (Operation.CREATE, Resource.REPLICATION),
    (Operation.UPDATE, Resource.REPLICATION),
)


def event_types() -> list[str]:
    """Harbor's event type names of what Berth records, sorted."""
    return sorted(f"{operation}_{resource}" for operation, resource in RECORDED)
