"""Replication in the admin (sysadmins only): endpoints with a write-only
secret and a ping action, policies with start actions, executions with their
tasks and logs, and a stop action. Every change is a service call."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.adminsite import (
    SERVICE_ERRORS,
    AdminScope,
    ReadOnlyMixin,
    ServiceDeleteAdmin,
    ServiceForm,
    ServiceFormAdmin,
    SysadminOnlyAdmin,
    refusal,
    site,
)
from replication.livejobs import ExecutionLive
from replication.models import Endpoint, Execution, Policy, Task
from replication.services import endpoints as endpoint_svc
from replication.services import executions as execution_svc
from replication.services import policies as policy_svc

# The fields an endpoint is made of: the service's own list.
ENDPOINT_FIELDS = endpoint_svc.FIELDS


class EndpointForm(ServiceForm):
    url = forms.URLField(label=_("URL"), max_length=1000, assume_scheme="https")
    # Write-only: never rendered back; left empty on a change, the sealed one stays.
    access_secret = forms.CharField(
        label=_("Access secret"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted and never shown. Leave empty to keep the current one."),
    )

    class Meta:
        model = Endpoint
        fields = ENDPOINT_FIELDS

    def perform(self, data: dict[str, Any]) -> Endpoint:
        fields = {k: data[k] for k in ENDPOINT_FIELDS if k in data}
        secret = data.get("access_secret") or None
        if self.instance.pk:
            return endpoint_svc.endpoint_update(
                actor=self.actor, endpoint_id=self.instance.pk, data=fields, secret=secret
            )
        return endpoint_svc.endpoint_create(actor=self.actor, data=fields, secret=secret or "")


@admin.register(Endpoint, site=site)
class EndpointAdmin(ServiceFormAdmin, ServiceDeleteAdmin, SysadminOnlyAdmin):
    form = EndpointForm
    list_display = ("name", "type", "url", "status", "checked_at")
    readonly_fields = ("status", "status_text", "checked_at", "created_at", "updated_at")
    actions = ["ping"]

    def delete_model(self, request: HttpRequest, obj: Endpoint) -> None:
        endpoint_svc.endpoint_delete(actor=AdminScope.of(request).actor, endpoint_id=obj.pk)

    @admin.action(description=_("Ping the selected endpoints"), permissions=["change"])
    def ping(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        actor = AdminScope.of(request).actor
        for endpoint in queryset:
            ok, text = endpoint_svc.endpoint_ping(actor=actor, endpoint=endpoint)
            if ok:
                messages.success(request, f"{endpoint.name}: healthy")
            else:
                messages.error(request, f"{endpoint.name}: {text}")


POLICY_FIELDS = (
    "name",
    "description",
    "src_endpoint",
    "dest_endpoint",
    "dest_namespace",
    "dest_namespace_replace_count",
    "filters",
    "trigger",
    "cron",
    "replicate_deletion",
    "override",
    "speed_kb",
    "single_active",
    "enabled",
)


class PolicyForm(ServiceForm):
    class Meta:
        model = Policy
        fields = POLICY_FIELDS
        help_texts = {
            "src_endpoint": _("Pull from this registry (empty: this Berth is the source)."),
            "dest_endpoint": _("Push to this registry (empty: this Berth is the destination)."),
            "filters": _(
                'A list of {"type": "name"|"tag"|"label"|"resource", "value": …, '
                '"decoration": "matches"|"excludes", "kind": "doublestar"|"regex"}.'
            ),
            "cron": _('Six fields, seconds first ("0 0 * * * *"), for a scheduled trigger.'),
        }

    def perform(self, data: dict[str, Any]) -> Policy:
        fields = {k: data[k] for k in POLICY_FIELDS if k in data}
        for key in ("src_endpoint", "dest_endpoint"):
            fields[key] = fields[key].pk if fields.get(key) else None
        if self.instance.pk:
            return policy_svc.policy_update(
                actor=self.actor, policy_id=self.instance.pk, data=fields
            )
        return policy_svc.policy_create(actor=self.actor, data=fields)


@admin.register(Policy, site=site)
class PolicyAdmin(ServiceFormAdmin, ServiceDeleteAdmin, SysadminOnlyAdmin):
    form = PolicyForm
    list_display = ("name", "direction", "trigger", "enabled", "updated_at")
    list_select_related = ("src_endpoint", "dest_endpoint")
    actions = ["start"]

    @admin.display(description=_("Direction"))
    def direction(self, obj: Policy) -> str:
        if obj.src_endpoint is not None:
            return f"pull ← {obj.src_endpoint.name}"
        return f"push → {obj.dest_endpoint.name if obj.dest_endpoint else '?'}"

    def delete_model(self, request: HttpRequest, obj: Policy) -> None:
        policy_svc.policy_delete(actor=AdminScope.of(request).actor, policy_id=obj.pk)

    @admin.action(
        description=_("Start an execution of the selected policies"), permissions=["change"]
    )
    def start(self, request: HttpRequest, queryset: QuerySet[Policy]) -> None:
        actor = AdminScope.of(request).actor
        for policy in queryset:
            try:
                execution = execution_svc.execution_start(actor=actor, policy_id=policy.pk)
            except SERVICE_ERRORS as exc:
                messages.error(request, f"{policy.name}: {refusal(exc)}")
                continue
            messages.success(request, f"{policy.name}: execution {execution.pk} started")


class TaskInline(admin.TabularInline):
    model = Task
    extra = 0
    can_delete = False
    fields = (
        "operation",
        "src_repository",
        "dst_repository",
        "references",
        "status",
        "attempts",
        "bytes_copied",
        "log_link",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return super().get_queryset(request).defer("log")

    @admin.display(description=_("Log"))
    def log_link(self, obj: Task) -> str:
        return format_html('<a href="../../task/{}/change/">{}</a>', obj.pk, _("log"))


@admin.register(Execution, site=site)
class ExecutionAdmin(ExecutionLive, ReadOnlyMixin, SysadminOnlyAdmin):
    list_display = (
        "id",
        "policy",
        "status",
        "trigger",
        "total",
        "succeeded",
        "failed",
        "stopped",
        "started_at",
        "ended_at",
    )
    list_filter = ("status", "trigger")
    list_select_related = ("policy",)
    show_full_result_count = False
    inlines = [TaskInline]
    exclude = ("scope",)
    actions = ["stop"]

    @admin.action(description=_("Stop the selected executions"))
    def stop(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        actor = AdminScope.of(request).actor
        for execution in queryset:
            try:
                execution_svc.execution_stop(actor=actor, execution_id=execution.pk)
            except SERVICE_ERRORS as exc:
                messages.error(request, f"{execution.pk}: {refusal(exc)}")
                continue
            messages.success(request, f"execution {execution.pk}: stop requested")


@admin.register(Task, site=site)
class TaskAdmin(ReadOnlyMixin, SysadminOnlyAdmin):
    list_display = ("id", "execution", "src_repository", "dst_repository", "status", "attempts")
    list_filter = ("status",)
    list_select_related = ("execution",)
    show_full_result_count = False
    readonly_fields = ("log_text",)
    exclude = ("log",)

    @admin.display(description=_("Log"))
    def log_text(self, obj: Task) -> str:
        return format_html("<pre>{}</pre>", obj.log)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        # The log (up to 256 KiB) is read only on the task's own page.
        return super().get_queryset(request).defer("log")
