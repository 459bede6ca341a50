"""Secrets at rest: sealed with Fernet under a key derived from SECRET_KEY
(HKDF); keys from SECRET_KEY_FALLBACKS still open what they sealed.

(The h16-ldap branch's stand-in for the lead's kit/sealed.py, same interface:
the merge takes main's.)"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

__all__ = ["SealedError", "seal", "unseal"]


class SealedError(Exception):
    """No configured key opens this token."""


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"berth sealed").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(s) for s in secrets])


def seal(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise SealedError("no configured key opens this secret") from None
