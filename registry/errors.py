"""The registry's error codes, and their HTTP statuses, declared in one place.

Every /v2 failure is a ``RegistryError``; ``registry.oci.dispatch`` turns it into
the OCI error envelope ``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

import enum
from typing import Any

from kit.errors import CodedError


class Code(enum.Enum):
    # (HTTP status, default message)
    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    TAG_INVALID = (400, "invalid tag")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    VALUE_INVALID = (400, "a value in the request cannot be stored or searched")
    RANGE_INVALID = (416, "invalid content range")
    MANIFEST_TOO_LARGE = (413, "manifest exceeds the size limit")
    IN_USE = (409, "the resource is referenced and cannot be deleted")
    TAG_IMMUTABLE = (412, "the tag is immutable: it cannot be moved or deleted")
    UNAVAILABLE = (503, "the registry cannot serve this request right now")
    INTERNAL = (500, "internal server error")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    @property
    def wire_code(self) -> str:
        # Codes outside the OCI list are sent as the nearest OCI code.
        return _WIRE.get(self, self.name)


_WIRE = {
    Code.RANGE_INVALID: "BLOB_UPLOAD_INVALID",
    Code.MANIFEST_TOO_LARGE: "SIZE_INVALID",
    Code.IN_USE: "DENIED",
    Code.TAG_IMMUTABLE: "DENIED",
    Code.VALUE_INVALID: "UNSUPPORTED",
    Code.INTERNAL: "UNKNOWN",
    Code.UNAVAILABLE: "UNAVAILABLE",
}


class RegistryError(CodedError):
    """A failure a client should see, with its OCI code."""

    def __init__(
        self,
        code: Code,
        message: str | None = None,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.status = code.status
        self.message = message or code.message
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "errors": [
                {"code": self.code.wire_code, "message": self.message, "detail": self.detail}
            ]
        }
