"""Identity and access: users, projects, memberships, robots, the token signing key."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Berth's user. ``is_superuser`` is Harbor's ``sysadmin_flag``."""

    realname = models.CharField(max_length=255, blank=True, default="")
    comment = models.CharField(max_length=1024, blank=True, default="")
    # Rotated when the user is disabled or its password is set: its refresh
    # tokens (with its password hash) are bound to it (accounts/services/auth.py,
    # principal_stamp), so enabling the user again revives none.
    stamp = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        ordering = ["id"]

    @property
    def sysadmin(self) -> bool:
        return self.is_superuser


class Role(models.IntegerChoices):
    PROJECT_ADMIN = 1, "projectAdmin"
    DEVELOPER = 2, "developer"
    GUEST = 3, "guest"
    MAINTAINER = 4, "maintainer"
    LIMITED_GUEST = 5, "limitedGuest"


class Project(models.Model):
    """A namespace: the first component of every repository name in it, and the
    unit of access (members, robots, public pulls). Content (repositories and
    what they hold) lives in ``registry``, which builds on this."""

    name = models.CharField(max_length=255, unique=True)
    public = models.BooleanField(default=False, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_projects",
    )
    # Harbor's other metadata keys (string values), besides "public".
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Created by registry's first migration; moved here without touching the
        # table (accounts 0004, registry 0006: state-only).
        db_table = "registry_project"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.IntegerField(choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="member_project_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user.username} in {self.project.name}"


class Robot(models.Model):
    """Harbor v2 robot account: ``robot$<name>`` or ``robot$<project>+<name>``."""

    name = models.CharField(max_length=255)
    description = models.CharField(max_length=1024, blank=True, default="")
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="robots"
    )
    secret_hash = models.CharField(max_length=255)
    disabled = models.BooleanField(default=False)
    duration = models.IntegerField(default=-1)  # days; -1 = never expires
    expires_at = models.DateTimeField(null=True, blank=True)
    # [{"kind": "project"|"system", "namespace": "<project>"|"*"|"/",
    #   "access": [{"resource", "action", "effect"}]}]
    permissions = models.JSONField(default=list)
    creator = models.CharField(max_length=255, blank=True, default="")
    # Rotated when the robot is disabled: its refresh tokens (with its secret hash)
    # are bound to it (accounts/services/auth.py, principal_stamp).
    stamp = models.CharField(max_length=32, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name"], name="robot_name_unique"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def level(self) -> str:
        return "project" if self.project_id else "system"


class SigningKey(models.Model):
    """The token service's RSA key: created at first start, shared by every replica
    through the database."""

    kid = models.CharField(max_length=64, unique=True)
    private_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.kid


class SystemSetting(models.Model):
    """A runtime setting a sysadmin changed (through the API or the admin);
    absent keys fall back to the environment (accounts/services/config.py)."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class PersonalAccessToken(models.Model):
    """A user's personal access token (docs/tokens.md): the password for
    ``docker login``, ``/v2`` and the API of a user who signs in through a
    browser (SSO) or wants a credential narrower than their password.

    ``permissions`` are robots' (Harbor's RobotPermission list); a token acts
    with what both they name and its user may do at the time of use. The
    secret is shown once and stored as a salted hash; ``key``, its public
    part, finds the row. The CLI secret (Harbor's, ``PUT
    /users/{id}/cli_secret``) is the one token named ``cli-secret``:
    unrestricted, without a key (found by its user's name), its secret also
    sealed so that its owner sees it again in ``GET /users/current``."""

    CLI_SECRET = "cli-secret"  # noqa: S105 - a name, not a secret

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    key = models.CharField(max_length=16, unique=True, null=True, blank=True)
    secret_hash = models.CharField(max_length=255)
    secret_sealed = models.TextField(blank=True, default="")
    # [{"kind": "project"|"system", "namespace": …, "access": [...]}], as robots'.
    permissions = models.JSONField(default=list, blank=True)
    # Acts with all its user's rights (the CLI secret).
    unrestricted = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Written in batches off the request path (accounts/services/usage.py).
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Names are unique among a user's live tokens (a revoked one's may be reused).
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="access_token_user_name",
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
