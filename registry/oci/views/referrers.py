from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from registry.manifests import OCI_INDEX
from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint
from registry.reference import parse_digest
from registry.services.manifests import referrers_list


def _list(request: HttpRequest, principal: Principal, name: str, digest: str) -> HttpResponse:
    subject = str(parse_digest(digest))
    artifact_type = request.GET.get("artifactType", "")
    manifests = referrers_list(
        repository_name=name,
        digest=subject,
        artifact_type=artifact_type,
        limit=settings.BERTH_PAGE_MAX * 10,
    )
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    response = HttpResponse(json.dumps(body).encode(), content_type=OCI_INDEX)
    if artifact_type:
        response["OCI-Filters-Applied"] = "artifactType"
    return response


referrers = endpoint({"GET": (Action.PULL, _list)})
