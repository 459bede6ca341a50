"""Every API failure as Harbor's envelope ``{"errors":[{"code","message"}]}``,
mapped in this one place. Database error text never reaches a client."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts.access import Denied, NotFound
from accounts.errors import Conflict, Invalid, PreconditionFailed, Unauthenticated
from kit.errors import CodedError

log = logging.getLogger("berth.api")

_DOMAIN = {
    Invalid: (400, "BAD_REQUEST"),
    Unauthenticated: (401, "UNAUTHORIZED"),
    Denied: (403, "FORBIDDEN"),
    NotFound: (404, "NOT_FOUND"),
    Conflict: (409, "CONFLICT"),
    PreconditionFailed: (412, "PRECONDITION"),
}
_DRF: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "BAD_REQUEST",
    exceptions.ValidationError: "BAD_REQUEST",
    exceptions.AuthenticationFailed: "UNAUTHORIZED",
    exceptions.NotAuthenticated: "UNAUTHORIZED",
    exceptions.PermissionDenied: "FORBIDDEN",
    exceptions.NotFound: "NOT_FOUND",
    exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    exceptions.UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
    exceptions.Throttled: "TOO_MANY_REQUESTS",
}


def _coded(exc: CodedError) -> Response:
    """Content rules broken through the API (registry/services) in Harbor's codes."""
    status = exc.status
    if status == 404:
        return envelope(404, "NOT_FOUND", "not found")
    if status == 409:
        return envelope(409, "CONFLICT", exc.message)
    if status in (403, 405):
        return envelope(403, "FORBIDDEN", exc.message)
    if status == 412:
        return envelope(412, "PRECONDITION", exc.message)
    if status == 503:
        response = envelope(503, "UNAVAILABLE", exc.message)
        response["Retry-After"] = "5"
        return response
    return envelope(400, "BAD_REQUEST", exc.message)


def envelope(status: int, code: str, message: str) -> Response:
    return Response({"errors": [{"code": code, "message": message}]}, status=status)


def handle(exc: Exception, context: dict[str, Any]) -> Response:
    for kind, (status, code) in _DOMAIN.items():
        if isinstance(exc, kind):
            message = str(exc) or code.lower().replace("_", " ")
            if isinstance(exc, NotFound):
                message = exc.message or "not found"  # never echo what exists
            return envelope(status, code, message)
    if isinstance(exc, CodedError):
        return _coded(exc)
    if isinstance(exc, RequestDataTooBig):
        return envelope(413, "REQUEST_ENTITY_TOO_LARGE", "the request body is too large")
    if isinstance(exc, Http404):
        return envelope(404, "NOT_FOUND", "not found")
    for kind, code in _DRF.items():
        if isinstance(exc, kind):
            response = envelope(exc.status_code, code, _text(exc.detail))
            if isinstance(exc, exceptions.Throttled) and exc.wait:
                response["Retry-After"] = str(int(exc.wait))
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                response["WWW-Authenticate"] = 'Basic realm="harbor"'
            return response
    if isinstance(exc, exceptions.APIException):
        # Any other DRF failure (406 Not Acceptable…) in the envelope too.
        return envelope(exc.status_code, str(exc.default_code).upper(), _text(exc.detail))
    if isinstance(exc, DataError):
        # A value the database cannot store or compare (on PostgreSQL: a NUL, a
        # string longer than its column): the request's fault, not an outage.
        log.warning("value refused by the database: %s", exc)
        return envelope(400, "BAD_REQUEST", "a value in the request cannot be stored or searched")
    if isinstance(exc, DatabaseError):
        log.exception("database error in the API")
        response = envelope(503, "UNAVAILABLE", "the database is unavailable; retry later")
        response["Retry-After"] = "5"
        return response
    # A bug: logged with its traceback, and still Harbor's JSON (never Django's
    # HTML error page under /api), with the request's transaction rolled back.
    log.exception("unexpected error in the API")
    set_rollback()
    return envelope(500, "INTERNAL_SERVER_ERROR", "internal server error")


def _text(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_text(v) for v in detail)
    return str(detail)
