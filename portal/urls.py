from django.urls import include, path

from accounts.views import login_view, logout_view, token
from portal import admin, views  # admin: Berth's site (portal/admin.py)

urlpatterns = [
    path("", include("registry.oci.urls")),
    path("service/token", token, name="token"),
    # Probes for Kubernetes and balancers (docs/scale-out.md).
    path("livez", views.livez, name="livez"),
    path("readyz", views.readyz, name="readyz"),
    path("c/login", login_view, name="login"),
    path("c/log_out", logout_view, name="logout"),
    path("api/v2.0/", include("accounts.api.urls")),
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
]
