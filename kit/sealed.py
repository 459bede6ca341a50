"""Secrets at rest: what Berth must read back (an LDAP bind password, an OIDC
client secret, a registry endpoint's credentials, a refresh token) is stored
sealed, never in the clear.

``seal`` encrypts with Fernet (AES-128-CBC with HMAC-SHA256: authenticated, from
``cryptography``, already a dependency) under a key derived from Django's
``SECRET_KEY`` with HKDF, so no second key has to be kept. ``unseal`` also tries
keys derived from ``SECRET_KEY_FALLBACKS``: rotate ``BERTH_SECRET_KEY`` by moving
the old one there, and ``reseal`` what was sealed under it.

A sealed value is an ordinary string column; services call these functions
explicitly, so a plaintext is never what a model, form or serializer holds by
accident. Plaintexts are never logged or returned by the API (write-only
fields).
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

__all__ = ["PREFIX", "SealedError", "is_sealed", "reseal", "seal", "unseal"]

# Marks a sealed string (and its scheme), so a column's content says what it is.
PREFIX = "fernet1:"
_INFO = b"berth sealed secrets v1"


class SealedError(Exception):
    """The value was not sealed by any key this installation has."""


def _key(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(derived)


@cache
def _fernet(secret: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_key(s)) for s in (secret, *fallbacks)])


def _current() -> MultiFernet:
    return _fernet(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def seal(plaintext: str) -> str:
    return PREFIX + _current().encrypt(plaintext.encode()).decode("ascii")


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def unseal(token: str) -> str:
    if not is_sealed(token):
        raise SealedError("not a sealed value")
    try:
        return _current().decrypt(token[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise SealedError("no key of this installation opens this value") from exc


def reseal(token: str) -> str:
    """The same plaintext sealed under the current key (after a key rotation)."""
    if not is_sealed(token):
        raise SealedError("not a sealed value")
    try:
        return PREFIX + _current().rotate(token[len(PREFIX) :].encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError) as exc:
        raise SealedError("no key of this installation opens this value") from exc
