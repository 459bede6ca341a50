"""Harbor's registry and replication API (composed in portal/urls.py)."""

from django.urls import path

from accounts.api.params import IdConverter  # noqa: F401 - registers <id:…>
from replication.api import views

urlpatterns = [
    path("registries", views.RegistryList.as_view()),
    path("registries/ping", views.RegistryPing.as_view()),
    path("registries/<id:registry_id>", views.RegistryDetail.as_view()),
    path("registries/<id:registry_id>/info", views.RegistryInfo.as_view()),
    path("replication/adapters", views.Adapters.as_view()),
    path("replication/adapterinfos", views.AdapterInfos.as_view()),
    path("replication/policies", views.PolicyList.as_view()),
    path("replication/policies/<id:policy_id>", views.PolicyDetail.as_view()),
    path("replication/executions", views.ExecutionList.as_view()),
    path("replication/executions/<id:execution_id>", views.ExecutionDetail.as_view()),
    path("replication/executions/<id:execution_id>/tasks", views.TaskList.as_view()),
    path(
        "replication/executions/<id:execution_id>/tasks/<id:task_id>/log", views.TaskLog.as_view()
    ),
]
