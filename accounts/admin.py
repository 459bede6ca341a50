"""Users, members and robots in the admin.

Every change with a rule goes through ``accounts.services`` (through
``accounts.adminsite.ServiceForm``); querysets and permissions follow the requesting
user's roles (``accounts.adminsite.AdminScope``). Users are for system administrators
only; members and robots are also managed by project administrators, within the
projects they administer.
"""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from accounts import pullsecret
from accounts.adminsite import (
    SERVICE_ERRORS,
    AdminScope,
    ProjectScopedAdmin,
    ReadOnlyMixin,
    ServiceForm,
    ServiceFormAdmin,
    SysadminOnlyAdmin,
    count_of,
    registry_host,
    site,
)
from accounts.models import Member, PersonalAccessToken, Project, Robot, SystemSetting, User
from accounts.rbac import PROJECT_RESOURCES, SYSTEM_PERMISSIONS
from accounts.services import config
from accounts.services.auth import TOKEN_PREFIX
from accounts.services.pats import token_revoke
from accounts.services.projects import member_add, member_remove, member_update
from accounts.services.robots import (
    robot_create,
    robot_delete,
    robot_refresh_secret,
    robot_update,
)
from accounts.services.users import (
    user_create,
    user_delete,
    user_set_active,
    user_set_sysadmin,
    user_update_profile,
)
from audit.models import AuditEvent

# members ----------------------------------------------------------------------


class MemberAddForm(ServiceForm):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    username = forms.CharField(max_length=255, help_text="The user to add, by user name.")

    class Meta:
        model = Member
        fields = ("role",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = self.scope.projects("member", "create")  # type: ignore[attr-defined]

    def perform(self, data: dict[str, Any]) -> Member:
        return member_add(
            actor=self.actor,
            project=data["project"],
            user_id=None,
            username=data["username"],
            role_id=data["role"],
        )


class MemberChangeForm(ServiceForm):
    class Meta:
        model = Member
        fields = ("role",)

    def perform(self, data: dict[str, Any]) -> Member:
        return member_update(
            actor=self.actor,
            project=self.instance.project,
            member_id=self.instance.pk,
            role_id=data["role"],
        )


@admin.register(Member, site=site)
class MemberAdmin(ServiceFormAdmin, ProjectScopedAdmin):
    resource = "member"
    form = MemberChangeForm
    list_display = ("username", "project", "role", "updated_at")
    list_select_related = ("user", "project")
    list_filter = ("role", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "project__name")
    ordering = ("project__name", "user__username")

    @admin.display(description="user", ordering="user__username")
    def username(self, obj: Member) -> str:
        return obj.user.username

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = MemberAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):  # type: ignore[no-untyped-def]
        if obj is None:
            return [(None, {"fields": ("project", "username", "role")})]
        return [(None, {"fields": ("username", "project", "role", "created_at", "updated_at")})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("username", "project", "created_at", "updated_at")

    def delete_model(self, request: HttpRequest, obj: Member) -> None:
        member_remove(actor=AdminScope.of(request).actor, project=obj.project, member_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset.select_related("project"):
            self.delete_model(request, member)


# robots -----------------------------------------------------------------------


def _access_choices(pool: dict[str, frozenset[str]]) -> list[tuple[str, str]]:
    return [(f"{res}:{act}", f"{res}: {act}") for res in sorted(pool) for act in sorted(pool[res])]


PROJECT_ACCESS = _access_choices(PROJECT_RESOURCES)
SYSTEM_ACCESS = _access_choices(SYSTEM_PERMISSIONS)


def robot_permissions(
    project: Project | None, project_access: list[str], system_access: list[str]
) -> list[dict[str, Any]]:
    """The robot permission document (Harbor's v2 shape) for the ticked boxes: a
    project robot's grants on its project; a system robot's on every project ("*")
    and on the system."""

    def accesses(values: list[str]) -> list[dict[str, str]]:
        return [
            {"resource": res, "action": act, "effect": "allow"}
            for res, _, act in (value.partition(":") for value in values)
        ]

    perms = []
    if project_access:
        namespace = project.name if project is not None else "*"
        perms.append(
            {"kind": "project", "namespace": namespace, "access": accesses(project_access)}
        )
    if system_access:
        perms.append({"kind": "system", "namespace": "/", "access": accesses(system_access)})
    return perms


def _ticked(robot: Robot, kind: str) -> list[str]:
    return [
        f"{item['resource']}:{item['action']}"
        for perm in robot.permissions
        if perm.get("kind") == kind
        for item in perm.get("access", [])
        if item.get("effect", "allow") == "allow"
    ]


def _access_field(choices: list[tuple[str, str]], label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=choices, required=False, label=label, widget=forms.CheckboxSelectMultiple
    )


class NamespaceField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            label=_("Kubernetes namespace"),
            max_length=63,
            initial="default",
            help_text=_("Of the image-pull Secret offered with the secret."),
            **kwargs,
        )

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not pullsecret.valid_namespace(value):
            raise forms.ValidationError(_("Not a Kubernetes namespace name."))


def shown_secret(request: HttpRequest, name: str, secret: str, namespace: str) -> dict[str, str]:
    """A robot's secret, shown this once (``templates/admin/accounts/robot/secret.html``,
    in a page answered with ``Cache-Control: no-store``), with the image-pull Secret
    to download as a data: link: the secret is never stored, put in a message nor
    served again."""
    document = pullsecret.pull_secret_yaml(
        host=registry_host(request),
        username=name,
        password=secret,
        namespace=namespace or "default",
    )
    filename = f"{pullsecret.secret_name(name)}.yaml"
    return {
        "name": name,
        "secret": secret,
        "filename": filename,
        "href": "data:application/yaml;base64," + base64.b64encode(document.encode()).decode(),
        "kubectl": f"kubectl apply -f {filename}",
    }


class RobotAddForm(ServiceForm):
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        help_text="Empty for a system robot (system administrators only).",
    )
    robot_name = forms.CharField(
        label="Name",
        max_length=200,
        # Help texts are HTML in the admin: the placeholders are escaped.
        help_text=escape(_("Becomes robot$<project>+<name>, or robot$<name> for a system robot.")),
    )
    project_access = _access_field(PROJECT_ACCESS, "Project permissions")
    system_access = _access_field(SYSTEM_ACCESS, "System permissions")
    namespace = NamespaceField(required=False)
    secret: str = ""

    class Meta:
        model = Robot
        fields = ("description", "duration", "disabled")
        help_texts = {"duration": "Days until the robot expires; -1 for never."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = self.scope.projects("robot", "create")  # type: ignore[attr-defined]
        if not self.scope.sysadmin:
            self.fields["project"].required = True
            del self.fields["system_access"]

    def perform(self, data: dict[str, Any]) -> Robot:
        project = data["project"]
        robot, self.secret = robot_create(
            actor=self.actor,
            name=data["robot_name"],
            level="system" if project is None else "project",
            permissions=robot_permissions(
                project, data["project_access"], data.get("system_access") or []
            ),
            duration=data["duration"],
            description=data["description"],
            disable=data["disabled"],
        )
        return robot


class RobotChangeForm(ServiceForm):
    project_access = _access_field(PROJECT_ACCESS, "Project permissions")
    system_access = _access_field(SYSTEM_ACCESS, "System permissions")

    class Meta:
        model = Robot
        fields = ("description", "duration", "disabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_access"].initial = _ticked(self.instance, "project")
        if self.instance.project_id is None:
            self.fields["system_access"].initial = _ticked(self.instance, "system")
        else:
            del self.fields["system_access"]

    def perform(self, data: dict[str, Any]) -> Robot:
        robot = self.instance
        permissions = None
        if {"project_access", "system_access"} & set(self.changed_data):
            permissions = robot_permissions(
                robot.project, data["project_access"], data.get("system_access") or []
            )
        return robot_update(
            actor=self.actor,
            robot_id=robot.pk,
            disable=data["disabled"],
            description=data["description"],
            duration=data["duration"],
            permissions=permissions,
        )


@admin.register(Robot, site=site)
class RobotAdmin(ServiceFormAdmin, ProjectScopedAdmin):
    resource = "robot"
    form = RobotChangeForm
    list_display = ("name", "project", "level", "disabled", "expires_at", "creator", "created_at")
    list_select_related = ("project",)
    list_filter = ("disabled", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name",)
    actions = ("refresh_secret",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = RobotAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):  # type: ignore[no-untyped-def]
        system = ("system_access",) if AdminScope.of(request).sysadmin else ()
        if obj is None:
            fields = ("project", "robot_name", "description", "duration", "disabled", "namespace")
            return [(None, {"fields": fields}), ("Access", {"fields": ("project_access", *system)})]
        fields = ("name", "project", "level", "description", "duration", "expires_at", "disabled")
        access = ("project_access",) if obj.project_id else ("project_access", "system_access")
        return [
            (None, {"fields": fields}),
            ("Access", {"fields": access}),
            ("History", {"fields": ("creator", "created_at", "updated_at")}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("name", "project", "level", "expires_at", "creator", "created_at", "updated_at")

    def _secrets_page(self, request: HttpRequest, secrets: list[dict[str, str]]) -> HttpResponse:
        """The page that shows new secrets, once: never a message (messages live in
        the session or a cookie), never cached."""
        context = {
            **self.admin_site.each_context(request),
            "title": self.model._meta.verbose_name_plural,
            "opts": self.model._meta,
            "secrets": secrets,
        }
        response = TemplateResponse(request, "admin/accounts/robot/secrets.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def response_add(
        self, request: HttpRequest, obj: Robot, post_url_continue: Any = None
    ) -> HttpResponse:
        form = getattr(request, "berth_robot_form", None)
        if form is None or not form.secret:
            return super().response_add(request, obj, post_url_continue)
        namespace = form.cleaned_data.get("namespace") or ""
        return self._secrets_page(
            request, [shown_secret(request, obj.name, form.secret, namespace)]
        )

    def save_model(self, request: HttpRequest, obj: Robot, form: Any, change: bool) -> None:
        """Already saved by the service; the add form keeps the secret for the page
        that answers (``response_add``)."""
        if not change:
            request.berth_robot_form = form  # type: ignore[attr-defined]

    def delete_model(self, request: HttpRequest, obj: Robot) -> None:
        robot_delete(actor=AdminScope.of(request).actor, robot_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Robot]) -> None:
        for robot in queryset:
            self.delete_model(request, robot)

    @admin.action(description="Refresh the secret of the selected robots", permissions=["change"])
    def refresh_secret(
        self, request: HttpRequest, queryset: QuerySet[Robot]
    ) -> HttpResponse | None:
        actor = AdminScope.of(request).actor
        secrets = []
        for robot in queryset:
            try:
                secret = robot_refresh_secret(actor=actor, robot_id=robot.pk)
            except SERVICE_ERRORS as exc:
                messages.error(request, f"{robot.name}: {exc}")
                continue
            secrets.append(shown_secret(request, robot.name, secret, "default"))
        return self._secrets_page(request, secrets) if secrets else None


# users ------------------------------------------------------------------------


class UserAddForm(ServiceForm, auth_forms.AdminUserCreationForm):
    usable_password = None  # Berth users log in with a password (or SSO, later)

    class Meta(auth_forms.AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "realname")

    def perform(self, data: dict[str, Any]) -> User:
        return user_create(
            actor=self.actor,
            username=data["username"],
            password=data["password1"],
            email=data.get("email") or "",
            realname=data.get("realname") or "",
        )


PROFILE_FIELDS = ("email", "realname", "comment")


class UserChangeForm(ServiceForm, auth_forms.UserChangeForm):
    class Meta(auth_forms.UserChangeForm.Meta):
        model = User
        fields = (*PROFILE_FIELDS, "is_active", "is_superuser")
        labels = {"is_superuser": "System administrator"}
        help_texts = {"is_superuser": "May do everything, in every project."}

    def perform(self, data: dict[str, Any]) -> User:
        user = self.instance
        if "is_superuser" in self.changed_data:
            user_set_sysadmin(actor=self.actor, user_id=user.pk, flag=data["is_superuser"])
        if "is_active" in self.changed_data:
            user_set_active(actor=self.actor, user_id=user.pk, active=data["is_active"])
        profile = {name: data[name] for name in PROFILE_FIELDS if name in self.changed_data}
        user_update_profile(actor=self.actor, user_id=user.pk, **profile)
        return User.objects.get(pk=user.pk)


@admin.register(User, site=site)
class UserAdmin(SysadminOnlyAdmin, ServiceFormAdmin, BaseUserAdmin):
    form = UserChangeForm
    add_form = UserAddForm
    list_display = (
        "username",
        "email",
        "realname",
        "is_superuser",
        "is_active",
        "project_count",
        "last_login",
    )
    list_filter = ("is_superuser", "is_active")
    search_fields = ("^username", "^email", "realname")
    ordering = ("id",)
    filter_horizontal = ()
    readonly_fields = ("username", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("realname", "email", "comment")}),
        ("Access", {"fields": ("is_active", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {"fields": ("username", "email", "realname", "password1", "password2")},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).annotate(project_count=count_of(Member, "user"))

    @admin.display(description="projects", ordering="project_count")
    def project_count(self, obj: Any) -> int:
        return obj.project_count

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = AdminScope.of(request)
        return scope.sysadmin and (obj is None or obj.pk not in (1, request.user.pk))

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(actor=AdminScope.of(request).actor, user_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            self.delete_model(request, user)


# settings --------------------------------------------------------------------------


class SettingForm(ServiceForm):
    """One editable setting; saved (and validated) by accounts.services.config."""

    key = forms.ChoiceField(choices=[(k, k) for k in config.EDITABLE])

    class Meta:
        model = SystemSetting
        fields = ("key", "value")

    def perform(self, data: dict[str, Any]) -> SystemSetting:
        key = data.get("key") or self.instance.key
        config.update(actor=self.actor, values={key: data["value"]})
        return SystemSetting.objects.get(key=key)


@admin.register(SystemSetting, site=site)
class SystemSettingAdmin(ServiceFormAdmin, SysadminOnlyAdmin):
    """Runtime settings a sysadmin may change (the rest come from the environment)."""

    form = SettingForm
    list_display = ("key", "value", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("key",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PersonalAccessToken, site=site)
class PersonalAccessTokenAdmin(ReadOnlyMixin, SysadminOnlyAdmin):
    """Every user's personal access tokens (docs/tokens.md), for system
    administrators: seen (never their secret) and revoked through the service,
    as ``DELETE /api/v2.0/berth/tokens/{id}`` does. Users manage their own on
    the portal's My tokens page."""

    list_display = ("name", "user", "prefix", "expires_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "unrestricted")
    search_fields = ("name", "user__username", "key")
    fields = (
        "user",
        "name",
        "prefix",
        "permissions",
        "unrestricted",
        "expires_at",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    show_full_result_count = False
    actions = ("revoke",)

    @admin.display(description=_("Starts with"))
    def prefix(self, obj: PersonalAccessToken) -> str:
        return f"{TOKEN_PREFIX}{obj.key}…" if obj.key else ""

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalAccessToken]) -> None:
        actor = AdminScope.of(request).actor
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(actor=actor, token_id=token.pk)
            revoked += 1
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": revoked}, messages.SUCCESS)


# The audit trail in the admin: read-only, searchable and filterable. Project
# admins see the events of the projects whose logs they may list. It is here,
# not in ``audit``, because reading the trail is an access decision and
# ``audit`` sits below ``accounts`` (docs/architecture.md).
@admin.register(AuditEvent, site=site)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "occurred_at",
        "username",
        "operation",
        "resource_type",
        "resource",
        "project_name",
        "result",
        "client_ip",
    )
    list_filter = ("operation", "resource_type", "result")
    search_fields = ("username", "resource", "project_name")
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        scope = AdminScope.of(request)
        rows = super().get_queryset(request)
        if scope.sysadmin:
            return rows
        return rows.filter(project_id__in=scope.projects("log", "list").values("pk"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = AdminScope.of(request)
        return scope.may_use_admin() and scope.may("log", "list")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = AdminScope.of(request)
        if scope.sysadmin:
            return True
        if not scope.may("log", "list"):
            return False
        return obj is None or scope.projects("log", "list").filter(pk=obj.project_id).exists()
