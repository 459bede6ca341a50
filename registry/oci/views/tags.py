from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint
from registry.oci.views.base import page_params, paged_response
from registry.services.manifests import tags_list


def _list(request: HttpRequest, principal: Principal, name: str) -> HttpResponse:
    n, last = page_params(request)
    names, more = tags_list(repository_name=name, n=n, last=last) if n else ([], False)
    return paged_response(request, {"name": name, "tags": names}, names, more, n)


tag_list = endpoint({"GET": (Action.PULL, _list)})
