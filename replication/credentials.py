"""Endpoint secrets at rest: sealed with a key derived from SECRET_KEY (Fernet,
HKDF-SHA256), unsealed only to call the endpoint; never returned by the API,
shown by the admin or logged.

The seam the whole project shares for this is ``kit/sealed.py``; until it is
on this branch, this module is replication's own implementation of the same
two calls, and the only place to change when it lands."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SealedError(Exception):
    """No configured key opens this token."""


def _fernet(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"berth sealed secrets"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(s) for s in secrets])


def seal(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode()


def unseal(token: str) -> str:
    if not token:
        return ""
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SealedError("no configured key opens this secret") from None
