"""The audit trail in the admin: read-only, searchable and filterable. Project
admins see the events of the projects whose logs they may list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import AuditEvent
from portal.admin import AdminScope, ReadOnlyMixin, site


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
        names = scope.projects("log", "list").values_list("name", flat=True)
        return rows.filter(project_name__in=list(names))

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = AdminScope.of(request)
        return scope.may_use_admin() and scope.may("log", "list")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        scope = AdminScope.of(request)
        if scope.sysadmin:
            return True
        if not scope.may("log", "list"):
            return False
        return obj is None or scope.projects("log", "list").filter(name=obj.project_name).exists()
