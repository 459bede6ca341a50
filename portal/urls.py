from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerSplitView

from accounts import sso_views
from accounts.adminsite import site as admin_site
from accounts.api.system import Unknown
from accounts.views import login_view, logout_view, token
from portal import projects, tokens, views

urlpatterns = [
    path("", include("registry.oci.urls")),
    path("service/token", token, name="token"),
    # Probes for Kubernetes and balancers (docs/scale-out.md).
    path("livez", views.livez, name="livez"),
    path("readyz", views.readyz, name="readyz"),
    path("c/login", login_view, name="login"),
    path("c/log_out", logout_view, name="logout"),
    # Sign-in through OpenID Providers and CAS servers (accounts/sso_views.py).
    path("c/oidc/login", sso_views.oidc_login, name="oidc-login"),
    path("c/oidc/callback", sso_views.oidc_callback, name="oidc-callback"),
    path("c/oidc/onboard", sso_views.oidc_onboard, name="oidc-onboard"),
    path("c/cas/<str:name>/login", sso_views.cas_login, name="cas-login"),
    path("c/sso/logout", sso_views.sso_logout, name="sso-logout"),
    # Harbor's API: each app's routes, then Harbor's JSON 404 for everything else.
    path("api/v2.0/", include("accounts.api.urls")),
    path("api/v2.0/", include("registry.api.urls")),
    path("api/v2.0/", include("replication.api.urls")),
    path("api/v2.0/<path:rest>", Unknown.as_view()),
    # Swagger UI on Berth's own OpenAPI document, where Harbor serves its own
    # (the split view serves its start-up script as a file: no inline script).
    path(
        "devcenter-api-2.0",
        SpectacularSwaggerSplitView.as_view(url_name="openapi", title="Berth API"),
        name="api-docs",
    ),
    path("admin", RedirectView.as_view(url="/admin/", permanent=True)),
    path("admin/", admin_site.urls),
    # The language switch (Django's set_language view) of every portal page.
    path("i18n/", include("django.conf.urls.i18n")),
    path("search/", views.search, name="portal-search"),
    path("tokens/", tokens.my_tokens, name="portal-tokens"),
    path("register/", views.register, name="portal-register"),
    # A project as tabs (portal/projects.py).
    path("projects/<int:project_id>/", projects.project_tab, name="portal-project"),
    *(
        path(
            f"projects/<int:project_id>/{tab}/",
            projects.project_tab,
            {"tab": tab},
            name=f"portal-project-{tab}",
        )
        for tab in projects.TABS
        if tab != "summary"
    ),
    path("", views.home, name="home"),
]
