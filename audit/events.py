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
    LABEL = "label"
    ARTIFACT_LABEL = "artifact_label"


class Result(models.TextChoices):
    SUCCESS = "success"
    FAILURE = "failure"
