from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

from registry.errors import Code, RegistryError
from registry.models import Upload
from registry.oci.access import Action, Principal, readable
from registry.oci.dispatch import body_stream, content_length, endpoint
from registry.reference import check_name, parse_digest
from registry.services.blobs import blob_mount, blob_sources
from registry.services.uploads import (
    range_header,
    upload_append,
    upload_cancel,
    upload_complete,
    upload_get,
    upload_monolithic,
    upload_start,
)

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")


def _session_response(name: str, upload: Upload, status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Location"] = f"/v2/{name}/blobs/uploads/{upload.id}"
    response["Range"] = range_header(upload.size)
    response["Docker-Upload-UUID"] = str(upload.id)
    response["Content-Length"] = "0"
    return response


def _blob_created(name: str, digest: str) -> HttpResponse:
    response = HttpResponse(status=201)
    response["Location"] = f"/v2/{name}/blobs/{digest}"
    response["Docker-Content-Digest"] = digest
    response["Content-Length"] = "0"
    return response


def _chunk(request: HttpRequest) -> tuple[int | None, int | None]:
    """(start, length) of the request body from Content-Range and Content-Length."""
    length = content_length(request)
    header = request.META.get("HTTP_CONTENT_RANGE", "")
    if not header:
        return None, length
    m = _CONTENT_RANGE.fullmatch(header.strip())
    if not m:
        raise RegistryError(Code.RANGE_INVALID, "malformed Content-Range")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start or (length is not None and length != end - start + 1):
        raise RegistryError(Code.RANGE_INVALID, "Content-Range does not match Content-Length")
    return start, end - start + 1 if length is None else length


def _mount(principal: Principal, name: str, digest: str, source: str | None) -> bool:
    if source is not None:
        candidates = [check_name(source)]
    else:
        candidates = blob_sources(digest=digest, exclude=name)
    sources = readable(principal, candidates)
    return blob_mount(repository_name=name, digest=digest, source_names=sources) is not None


def _post(request: HttpRequest, principal: Principal, name: str) -> HttpResponse:
    mount = request.GET.get("mount")
    if mount is not None:
        digest = str(parse_digest(mount))
        if _mount(principal, name, digest, request.GET.get("from")):
            return _blob_created(name, digest)
        # Not mountable (absent, or not readable by the caller): a normal upload.
    wanted = request.GET.get("digest")
    if wanted is not None:
        digest_obj = parse_digest(wanted)
        blob = upload_monolithic(
            repository_name=name,
            owner=principal.upload_owner,
            digest=digest_obj,
            stream=body_stream(request),
            length=content_length(request),
        )
        return _blob_created(name, blob.digest)
    upload = upload_start(repository_name=name, owner=principal.upload_owner)
    return _session_response(name, upload, 202)


def _status(request: HttpRequest, principal: Principal, name: str, upload_id: str) -> HttpResponse:
    upload = upload_get(repository_name=name, upload_id=upload_id)
    return _session_response(name, upload, 204)


def _patch(request: HttpRequest, principal: Principal, name: str, upload_id: str) -> HttpResponse:
    upload = upload_get(repository_name=name, upload_id=upload_id)
    start, length = _chunk(request)
    upload = upload_append(upload=upload, stream=body_stream(request), length=length, start=start)
    return _session_response(name, upload, 202)


def _put(request: HttpRequest, principal: Principal, name: str, upload_id: str) -> HttpResponse:
    upload = upload_get(repository_name=name, upload_id=upload_id)
    wanted = request.GET.get("digest")
    if not wanted:
        raise RegistryError(Code.DIGEST_INVALID, "the digest query parameter is required")
    digest = parse_digest(wanted)
    start, length = _chunk(request)
    blob = upload_complete(
        upload=upload, digest=digest, stream=body_stream(request), length=length, start=start
    )
    return _blob_created(name, blob.digest)


def _cancel(request: HttpRequest, principal: Principal, name: str, upload_id: str) -> HttpResponse:
    upload = upload_get(repository_name=name, upload_id=upload_id)
    upload_cancel(upload=upload)
    return HttpResponse(status=204)


start = endpoint({"POST": (Action.PUSH, _post)})
session = endpoint(
    {
        "GET": (Action.PUSH, _status),
        "PATCH": (Action.PUSH, _patch),
        "PUT": (Action.PUSH, _put),
        "DELETE": (Action.PUSH, _cancel),
    }
)
