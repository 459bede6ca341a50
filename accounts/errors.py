"""Control-plane failures, mapped to Harbor's API codes in accounts/api/errors.py.
Declared once in the kit (kit/errors.py); re-exported here for accounts' callers."""

from __future__ import annotations

from kit.errors import Conflict, Denied, Invalid, NotFound, PreconditionFailed, Unauthenticated

__all__ = ["Conflict", "Denied", "Invalid", "NotFound", "PreconditionFailed", "Unauthenticated"]
