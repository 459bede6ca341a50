"""/v2 routes. Repository names contain slashes, so the fixed suffixes anchor them;
the name itself is validated by registry.oci.dispatch before anything else runs."""

from django.urls import re_path

from registry.oci.views import base, blobs, catalog, manifests, referrers, tags, uploads

NAME = r"(?P<name>.+?)"

urlpatterns = [
    re_path(r"^v2/?$", base.version_check),
    re_path(r"^v2/_catalog$", catalog.catalog),
    re_path(rf"^v2/{NAME}/tags/list$", tags.tag_list),
    re_path(rf"^v2/{NAME}/manifests/(?P<reference>[^/]+)$", manifests.manifest),
    re_path(rf"^v2/{NAME}/blobs/uploads/?$", uploads.start),
    re_path(rf"^v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$", uploads.session),
    re_path(rf"^v2/{NAME}/blobs/(?P<digest>[^/]+)$", blobs.blob),
    re_path(rf"^v2/{NAME}/referrers/(?P<digest>[^/]+)$", referrers.referrers),
    re_path(r"^v2/(?P<path>.*)$", base.not_found),
]
