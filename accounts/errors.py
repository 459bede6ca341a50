"""Control-plane failures, mapped to Harbor's API codes in accounts/api/errors.py."""

from __future__ import annotations

from accounts.access import Denied, NotFound


class Invalid(Exception):
    """The request is malformed or breaks a rule (400)."""


class Conflict(Exception):
    """The thing already exists (409)."""


class PreconditionFailed(Exception):
    """The target is not in a state that allows this (412)."""


class Unauthenticated(Exception):
    """Credentials are needed (401)."""


__all__ = ["Conflict", "Denied", "Invalid", "NotFound", "PreconditionFailed", "Unauthenticated"]
