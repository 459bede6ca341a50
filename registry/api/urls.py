"""Harbor's content API under /api/v2.0 (composed in portal/urls.py)."""

from django.urls import path

from accounts.api.params import IdConverter  # noqa: F401 - registers <id:…>
from registry.api import content, labels, overview, retention, system
from registry.models import SystemJob

_gc = system.views(SystemJob.Kind.GC)
_purge = system.views(SystemJob.Kind.PURGE_AUDIT)

urlpatterns = [
    *labels.urlpatterns,
    *retention.urlpatterns,
    path("statistics", overview.Statistics.as_view()),
    path("search", overview.Search.as_view()),
    path("quotas", overview.QuotaList.as_view()),
    path("quotas/<id:qid>", overview.QuotaDetail.as_view()),
    path("systeminfo/volumes", overview.Volumes.as_view()),
    path("system/gc", _gc["history"]),
    path("system/gc/schedule", _gc["schedule"]),
    path("system/gc/<id:gc_id>", _gc["detail"]),
    path("system/gc/<id:gc_id>/log", _gc["log"]),
    path("system/purgeaudit", _purge["history"]),
    path("system/purgeaudit/schedule", _purge["schedule"]),
    path("system/purgeaudit/<id:purge_id>", _purge["detail"]),
    path("system/purgeaudit/<id:purge_id>/log", _purge["log"]),
    path("projects/<str:ref>/artifacts", content.ProjectArtifactList.as_view()),
    path("projects/<str:ref>/immutabletagrules", content.ImmutableRuleList.as_view()),
    path(
        "projects/<str:ref>/immutabletagrules/<id:rule_id>",
        content.ImmutableRuleDetail.as_view(),
    ),
    path("projects/<str:ref>/repositories", content.RepositoryList.as_view()),
    # Repository names may hold slashes (sent as %2F or %252F): match the longest
    # path that ends in a fixed suffix.
    path(
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/tags/<str:tag>",
        content.TagDetail.as_view(),
    ),
    path(
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/tags",
        content.TagList.as_view(),
    ),
    path(
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/accessories",
        content.AccessoryList.as_view(),
    ),
    path(
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/additions/<str:addition>",
        content.AdditionDetail.as_view(),
    ),
    path(
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>",
        content.ArtifactDetail.as_view(),
    ),
    path("projects/<str:ref>/repositories/<path:repo>/artifacts", content.ArtifactList.as_view()),
    path("projects/<str:ref>/repositories/<path:repo>", content.RepositoryDetail.as_view()),
    path("repositories", content.AllRepositories.as_view()),
]
