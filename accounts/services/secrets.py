"""Robot secrets: generated high-entropy strings, stored as salted SHA-256.

A random 32-character secret needs no slow hash (nothing to brute-force from a
dictionary); comparing is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def generate_secret(length: int = 32) -> str:
    while True:
        value = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in value)
            and any(c.isupper() for c in value)
            and any(c.isdigit() for c in value)
        ):
            return value


def hash_secret(secret: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        algorithm, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    if algorithm != "sha256":
        return False
    actual = hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
    return hmac.compare_digest(actual, digest)
