"""Turning /v2 requests into service calls and RegistryErrors into responses.

Each endpoint is declared with ``endpoint({method: (action, handler)})``; the
wrapper validates the repository name (before anything touches storage), runs the
authorization hook, calls the handler and maps every error to the OCI envelope in
one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from registry.errors import Code, RegistryError
from registry.oci.access import Action, Principal, authorize
from registry.reference import check_name

log = logging.getLogger("berth.registry")

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
Handler = Callable[..., HttpResponse]


def error_response(error: RegistryError) -> HttpResponse:
    body = json.dumps(error.body()).encode()
    response = HttpResponse(body, status=error.code.status, content_type="application/json")
    for key, value in error.headers.items():
        response[key] = value
    response[API_VERSION[0]] = API_VERSION[1]
    return response


def raw_path_ok(meta: Mapping[str, Any]) -> bool:
    """Percent-encoded separators must not sneak past the name grammar: the
    server has already decoded PATH_INFO, so look at the raw request line too
    (``meta``: the WSGI environ, or ``request.META``)."""
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI") or ""
    path = raw.split("?", 1)[0].lower()
    return "%2f" not in path and "%2e" not in path and "%5c" not in path and "%00" not in path


def endpoint(routes: dict[str, tuple[Action, Handler]]) -> Callable[..., HttpResponse]:
    allowed = ", ".join(sorted(routes))

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            route = routes.get(request.method or "")
            if route is None:
                raise RegistryError(
                    Code.UNSUPPORTED,
                    f"method {request.method} not allowed here",
                    headers={"Allow": allowed},
                )
            action, handler = route
            name = kwargs.get("name")
            if name is not None:
                if not raw_path_ok(request.META):
                    raise RegistryError(Code.NAME_INVALID, "encoded characters in the name")
                check_name(name)
            principal: Principal = authorize(request, name=name, action=action)
            response = handler(request, principal, **kwargs)
        except RegistryError as error:
            response = error_response(error)
        except DataError as exc:
            # A value the database cannot store or compare (on PostgreSQL: a NUL, a
            # string longer than its column): the request's fault, not an outage.
            log.warning(
                "value refused by the database on %s %s: %s", request.method, request.path, exc
            )
            response = error_response(RegistryError(Code.VALUE_INVALID))
        except DatabaseError:
            log.exception("database error on %s %s", request.method, request.path)
            response = error_response(RegistryError(Code.UNAVAILABLE, headers={"Retry-After": "5"}))
        except OSError as exc:
            log.exception("storage error on %s %s", request.method, request.path)
            response = error_response(
                RegistryError(
                    Code.UNAVAILABLE,
                    "storage unavailable" if exc.errno != 28 else "storage is full",
                    headers={"Retry-After": "30"},
                )
            )
        response[API_VERSION[0]] = API_VERSION[1]
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response

    return view


def content_length(request: HttpRequest) -> int | None:
    """The announced body length, or None for a chunked body (read to EOF)."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        return None if request.META.get("wsgi.input_terminated") else 0
    try:
        value = int(raw)
    except ValueError:
        raise RegistryError(Code.SIZE_INVALID, "invalid Content-Length") from None
    if value < 0:
        raise RegistryError(Code.SIZE_INVALID, "invalid Content-Length")
    return value


def body_stream(request: HttpRequest) -> Any:
    """The raw WSGI input: Django's request.read() sees nothing of a chunked body."""
    return request.META["wsgi.input"]


def read_bounded(request: HttpRequest, limit: int, error: RegistryError) -> bytes:
    """Read the whole body, never more than ``limit`` bytes into memory."""
    length = content_length(request)
    if length is not None and length > limit:
        raise error
    stream = body_stream(request)
    want = limit + 1 if length is None else length
    parts: list[bytes] = []
    got = 0
    while got < want:
        data = stream.read(min(1 << 20, want - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    if got > limit:
        raise error
    if length is not None and got != length:
        raise RegistryError(Code.SIZE_INVALID, f"body ended after {got} of {length} bytes")
    return b"".join(parts)
