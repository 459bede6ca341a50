from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.access import visible_projects
from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint
from registry.oci.views.base import page_params, paged_response
from registry.services.manifests import catalog_list


def _list(request: HttpRequest, principal: Principal) -> HttpResponse:
    n, last = page_params(request)
    projects = visible_projects(principal.full_actor())
    names, more = catalog_list(n=n, last=last, projects=projects) if n else ([], False)
    return paged_response(request, {"repositories": names}, names, more, n)


catalog = endpoint({"GET": (Action.CATALOG, _list)})
