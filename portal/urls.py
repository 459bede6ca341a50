from django.contrib import admin
from django.urls import include, path

from portal import views

urlpatterns = [
    path("", include("registry.oci.urls")),
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
]
