"""The domain errors every app raises, declared once. The API maps them to
Harbor's envelope in one place (``accounts/api/errors.py``), the admin to form
errors (``accounts/adminsite.py``), ``/v2`` to OCI codes
(``registry/oci/dispatch.py``)."""

from __future__ import annotations


class Invalid(Exception):
    """The request is malformed or breaks a rule (400)."""


class Unauthenticated(Exception):
    """Credentials are needed (401)."""


class Denied(Exception):
    """The actor may not do this (and may know the target exists) (403)."""


class NotFound(Exception):
    """The target does not exist, or the actor may not know that it does (404).
    Callers are told only "not found", unless ``message`` is given: for a caller
    who may know the target exists (Harbor's "user 7 not found" to a sysadmin)."""

    def __init__(self, *args: object, message: str | None = None) -> None:
        super().__init__(*args)
        self.message = message


class Conflict(Exception):
    """The thing already exists (409)."""


class PreconditionFailed(Exception):
    """The target is not in a state that allows this (412)."""


class CodedError(Exception):
    """A failure that carries its own HTTP status and message (the registry's OCI
    errors): the API maps it by ``status`` without knowing the app it came from."""

    status: int
    message: str
