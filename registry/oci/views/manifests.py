from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.access import split_repository
from audit.events import Operation, Resource
from audit.services import record_later
from registry.errors import Code, RegistryError
from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint, read_bounded
from registry.services.manifests import (
    artifact_ref,
    manifest_delete,
    manifest_get,
    manifest_put,
)


def content_headers(digest: str, media_type: str, size: int) -> list[tuple[str, str]]:
    """The headers of a manifest GET or HEAD (also the fast path's, registry/oci/fast.py)."""
    return [
        ("Content-Type", media_type),
        ("Content-Length", str(size)),
        ("Docker-Content-Digest", digest),
        ("ETag", f'"{digest}"'),
    ]


def _content_headers(response: HttpResponse, digest: str, media_type: str, size: int) -> None:
    for key, value in content_headers(digest, media_type, size):
        response[key] = value


def audit_pull(principal: Principal, name: str, reference: str) -> None:
    """Pulls are batched in memory (audit/services.py): the hottest path takes
    no write. Pushes and deletes are audited through their durable events."""
    record_later(
        actor=principal.actor,
        operation=Operation.PULL,
        resource_type=Resource.ARTIFACT,
        resource=artifact_ref(name, reference),
        project=parts[0] if (parts := split_repository(name)) else "",
        client_ip=principal.client,
        pulled_repository=name,
    )


def _get(request: HttpRequest, principal: Principal, name: str, reference: str) -> HttpResponse:
    content = manifest_get(repository_name=name, reference=reference)
    audit_pull(principal, name, reference)
    response = HttpResponse(content.payload)
    _content_headers(response, content.digest, content.media_type, len(content.payload))
    return response


def _head(request: HttpRequest, principal: Principal, name: str, reference: str) -> HttpResponse:
    content = manifest_get(repository_name=name, reference=reference)
    response = HttpResponse()
    _content_headers(response, content.digest, content.media_type, len(content.payload))
    return response


def _put(request: HttpRequest, principal: Principal, name: str, reference: str) -> HttpResponse:
    limit = settings.BERTH_MANIFEST_MAX_BYTES
    body = read_bounded(
        request,
        limit,
        RegistryError(Code.MANIFEST_TOO_LARGE, f"manifest larger than {limit} bytes"),
    )
    result = manifest_put(
        repository_name=name,
        reference=reference,
        body=body,
        content_type=request.META.get("CONTENT_TYPE", ""),
        extra_tags=request.GET.getlist("tag"),
        may_move_tags=lambda: principal.may_update(name),
        actor=principal.actor,
        client=principal.client,
    )
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/manifests/{result.digest}"
    response["Docker-Content-Digest"] = result.digest
    response["Content-Length"] = "0"
    if result.subject:
        response["OCI-Subject"] = result.subject
    if result.tags:
        response["OCI-Tag"] = ", ".join(result.tags)
    return response


def _delete(request: HttpRequest, principal: Principal, name: str, reference: str) -> HttpResponse:
    manifest_delete(
        repository_name=name, reference=reference, actor=principal.actor, client=principal.client
    )
    return HttpResponse(status=202)


manifest = endpoint(
    {
        "GET": (Action.PULL, _get),
        "HEAD": (Action.PULL, _head),
        "PUT": (Action.PUSH, _put),
        "DELETE": (Action.DELETE, _delete),
    }
)
