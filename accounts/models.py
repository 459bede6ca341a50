"""Identity and access: users, projects, memberships, robots, the token signing key."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """Berth's user. ``is_superuser`` is Harbor's ``sysadmin_flag``."""

    realname = models.CharField(max_length=255, blank=True, default="")
    comment = models.CharField(max_length=1024, blank=True, default="")
    # Rotated when the user is disabled or its password is set: its refresh
    # tokens (with its password hash) are bound to it (accounts/services/auth.py,
    # principal_stamp), so enabling the user again revives none.
    stamp = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
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
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        # Created by registry's first migration; moved here without touching the
        # table (accounts 0004, registry 0006: state-only).
        db_table = "registry_project"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdentityProvider(models.Model):
    """An identity source besides Berth's own users: an LDAP/AD directory, an
    OpenID Provider or a CAS server, configured at run time by a sysadmin
    (accounts/services/providers.py). Several may be enabled at once; ``order``
    is the order they are tried (lowest first) and shown; the first enabled
    LDAP provider is Harbor's ``auth_mode``/``ldap_*`` view of them."""

    class Kind(models.TextChoices):
        LDAP = "ldap", "LDAP/AD"
        OIDC = "oidc", "OIDC"
        CAS = "cas", "CAS"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    order = models.IntegerField(default=0)
    # Non-secret settings of the kind (accounts/services/providers.py names
    # the keys each kind knows).
    config = models.JSONField(default=dict, blank=True)
    # The one secret (an LDAP bind password, an OIDC client secret), sealed
    # with kit.sealed; "" when there is none. Never returned, never logged.
    secret_sealed = models.TextField(blank=True, default="")
    # First sign-in of an unknown identity creates a user.
    allow_create_users = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_sealed)


class ExternalIdentity(models.Model):
    """A user's identity at a provider: bound by (provider, subject) — an LDAP
    entry's DN or immutable id, an OIDC ``iss``/``sub``'s ``sub``, a CAS user —
    never by matching user names."""

    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="identities"
    )
    subject = models.CharField(max_length=1024)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="identities")
    # What the provider said last (e.g. the entry's DN, e-mail), for display.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "subject"], name="external_identity_provider_subject"
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.subject} at {self.provider_id}"


class UserGroup(models.Model):
    """Harbor's user group: a directory group (by DN), an OIDC groups-claim
    value or an HTTP (reverse-proxy) group. A group may be a project member;
    its users' role is the highest of their own and their groups'."""

    class Type(models.IntegerChoices):
        LDAP = 1, "LDAP"
        HTTP = 2, "HTTP"
        OIDC = 3, "OIDC"

    name = models.CharField(max_length=255)
    type = models.IntegerField(choices=Type.choices)
    # The group's DN for an LDAP group ("" otherwise), compared normalised
    # (accounts/services/groups.py, normalize_dn).
    ldap_group_dn = models.CharField(max_length=1024, blank=True, default="")
    provider = models.ForeignKey(
        IdentityProvider,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="groups",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["type", "name"],
                condition=~models.Q(type=1),
                name="usergroup_type_name",
            ),
            models.UniqueConstraint(
                fields=["ldap_group_dn"],
                condition=models.Q(type=1),
                name="usergroup_ldap_dn",
            ),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class GroupMembership(models.Model):
    """A user is in a group: written when the provider says so (at sign-in,
    by the refresh job, or by an administrator for HTTP groups)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="group_memberships")
    group = models.ForeignKey(UserGroup, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "group"], name="group_membership_user_group"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.group_id}"


class Member(models.Model):
    """A project member: a user or a user group (exactly one of them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    group = models.ForeignKey(
        UserGroup,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="project_memberships",
    )
    role = models.IntegerField(choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="member_project_user"),
            models.UniqueConstraint(fields=["project", "group"], name="member_project_group"),
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="member_user_xor_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity_name} in {self.project.name}"

    @property
    def entity_type(self) -> str:
        """Harbor's ``entity_type``: "u" for a user, "g" for a group."""
        return "u" if self.user_id else "g"

    @property
    def entity_name(self) -> str:
        if self.user_id:
            return self.user.username if self.user else ""
        return self.group.name if self.group else ""


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
        verbose_name = _("robot")
        verbose_name_plural = _("robots")
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

    class Meta:
        verbose_name = _("system setting")
        verbose_name_plural = _("system settings")

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


class OidcToken(models.Model):
    """The refresh token an OpenID Provider gave at a user's last sign-in,
    sealed (kit.sealed): what keeps a CLI secret alive when a provider is
    configured to tie the two (Harbor's behaviour). Never shown or logged."""

    identity = models.OneToOneField(
        ExternalIdentity, on_delete=models.CASCADE, related_name="oidc_token"
    )
    refresh_sealed = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"refresh token of {self.identity_id}"
