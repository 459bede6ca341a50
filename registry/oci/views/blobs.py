from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint
from registry.reference import parse_digest
from registry.services.blobs import BlobInfo, blob_stat, blob_unlink
from registry.storage import blob_store

BLOCK = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class BlobFileResponse(FileResponse):
    """Streams in 1 MiB blocks (Django's 4 KiB default caps throughput), or hands
    the file to the server's ``wsgi.file_wrapper`` (sendfile) where it has one."""

    block_size = BLOCK


def _headers(response: HttpResponse, blob: BlobInfo) -> None:
    response["Docker-Content-Digest"] = blob.digest
    response["ETag"] = f'"{blob.digest}"'
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "max-age=31536000"


def _range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) inclusive; None when absent or unparseable (serve it all);
    False when it cannot be satisfied."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if not m or m.group(1) == m.group(2) == "":
        return None
    first, last = m.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return False
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


def _stream(fh: BinaryIO, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            data = fh.read(min(BLOCK, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        fh.close()


def _get(request: HttpRequest, principal: Principal, name: str, digest: str) -> HttpResponse:
    blob = blob_stat(repository_name=name, digest=str(parse_digest(digest)))
    wanted = _range(request.META.get("HTTP_RANGE", ""), blob.size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{blob.size}"
        return response
    store = blob_store()
    if settings.BERTH_STORAGE_REDIRECT and hasattr(store, "blob_url"):
        # The bytes go from the bucket to the client (a Range header follows the
        # redirect); the grant is the URL's signature, valid for 20 minutes.
        response = HttpResponse(status=307)
        response["Location"] = store.blob_url(blob.digest, expires=1200)
        response["Docker-Content-Digest"] = blob.digest
        response["Cache-Control"] = "no-store"
        return response
    if settings.BERTH_BLOB_X_ACCEL_REDIRECT and hasattr(store, "blob_relative_path"):
        # Authorized here; nginx sends the file (sendfile) and answers a Range
        # itself. It keeps only standard headers of this answer: its config
        # adds back the digest (deploy/nginx/berth.conf).
        response = HttpResponse(content_type="application/octet-stream")
        response["X-Accel-Redirect"] = settings.BERTH_BLOB_X_ACCEL_REDIRECT + (
            store.blob_relative_path(blob.digest)
        )
        _headers(response, blob)
        return response
    fh = store.open_blob(blob.digest)
    if wanted is None:
        response: HttpResponse = BlobFileResponse(fh, content_type="application/octet-stream")
        del response["Content-Disposition"]
        response["Content-Length"] = str(blob.size)
    else:
        start, end = wanted
        fh.seek(start)
        response = StreamingHttpResponse(
            _stream(fh, end - start + 1), status=206, content_type="application/octet-stream"
        )
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    _headers(response, blob)
    return response


def _head(request: HttpRequest, principal: Principal, name: str, digest: str) -> HttpResponse:
    blob = blob_stat(repository_name=name, digest=str(parse_digest(digest)))
    response = HttpResponse(content_type="application/octet-stream")
    response["Content-Length"] = str(blob.size)
    _headers(response, blob)
    return response


def _delete(request: HttpRequest, principal: Principal, name: str, digest: str) -> HttpResponse:
    blob_unlink(repository_name=name, digest=str(parse_digest(digest)))
    return HttpResponse(status=202)


blob = endpoint(
    {
        "GET": (Action.PULL, _get),
        "HEAD": (Action.PULL, _head),
        "DELETE": (Action.DELETE, _delete),
    }
)
