"""Harbor's identity and access API under /api/v2.0 (composed in portal/urls.py)."""

from django.urls import path
from drf_spectacular.renderers import OpenApiJsonRenderer2
from drf_spectacular.views import SpectacularJSONAPIView

from accounts.api import overview, projects, robots, system, tokens, users
from accounts.api.audit import (
    AuditLogEventTypes,
    AuditLogExtList,
    AuditLogList,
    ProjectLogExts,
    ProjectLogs,
)
from accounts.api.params import IdConverter  # noqa: F401 - registers <id:…>

urlpatterns = [
    # JSON as application/json (drf-spectacular's default is YAML, then
    # application/vnd.oai.openapi+json).
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(renderer_classes=[OpenApiJsonRenderer2]),
        name="openapi",
    ),
    path("ping", system.Ping.as_view()),
    path("health", system.Health.as_view()),
    path("systeminfo", system.SystemInfo.as_view()),
    path("systeminfo/getcert", system.RootCert.as_view()),
    path("configurations", overview.Configurations.as_view()),
    path("permissions", overview.PermissionPool.as_view()),
    path("users/current/permissions", overview.CurrentUserPermissions.as_view()),
    path("projects", projects.ProjectList.as_view()),
    path("projects/<str:ref>", projects.ProjectDetail.as_view()),
    path("projects/<str:ref>/_deletable", projects.ProjectDeletable.as_view()),
    path("projects/<str:ref>/summary", projects.ProjectSummary.as_view()),
    # Harbor's swagger spells it with the slash; both forms answer.
    path("projects/<str:ref>/metadatas", projects.MetadataList.as_view()),
    path("projects/<str:ref>/metadatas/", projects.MetadataList.as_view()),
    path("projects/<str:ref>/metadatas/<str:name>", projects.MetadataDetail.as_view()),
    path("projects/<str:ref>/members", projects.MemberList.as_view()),
    path("projects/<str:ref>/members/<id:mid>", projects.MemberDetail.as_view()),
    path("projects/<str:ref>/logs", ProjectLogs.as_view()),
    path("audit-logs", AuditLogList.as_view()),
    path("auditlog-exts", AuditLogExtList.as_view()),
    path("auditlog-exts/events", AuditLogEventTypes.as_view()),
    path("projects/<str:ref>/auditlog-exts", ProjectLogExts.as_view()),
    path("users", users.UserList.as_view()),
    path("users/current", users.UserCurrent.as_view()),
    path("users/search", users.UserSearch.as_view()),
    path("users/<id:uid>", users.UserDetail.as_view()),
    path("users/<id:uid>/password", users.UserPassword.as_view()),
    path("users/<id:uid>/sysadmin", users.UserSysadmin.as_view()),
    path("users/<id:uid>/cli_secret", users.UserCliSecret.as_view()),
    path("robots", robots.RobotList.as_view()),
    path("robots/<id:rid>", robots.RobotDetail.as_view()),
    # Berth's own endpoints (not Harbor's): docs/api.md.
    path("berth/tokens", tokens.TokenList.as_view()),
    path("berth/tokens/<id:tid>", tokens.TokenDetail.as_view()),
]
