"""The grammar of names, tags and digests (OCI distribution-spec), the guard that
runs before any storage access."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import Code, RegistryError

# One path component: lower-case alphanumerics separated by '.', '_', '__' or '-'s.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
NAME_MAX = 255
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
ALGORITHMS = {"sha256": 64, "sha512": 128}


def is_name(name: str) -> bool:
    """A repository name of the OCI distribution grammar: lower-case components
    joined by single '/', at most NAME_MAX characters."""
    return len(name) <= NAME_MAX and NAME_RE.fullmatch(name) is not None


def name_invalid(name: str) -> RegistryError:
    return RegistryError(
        Code.NAME_INVALID,
        "invalid repository name: lower-case letters, digits and '.', '_', '__', '-' "
        "within components joined by single '/'",
        detail={"name": name[:300]},
    )


def check_name(name: str) -> str:
    if not is_name(name):
        raise name_invalid(name)
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(Code.TAG_INVALID, detail={"tag": tag[:300]})
    return tag


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: str) -> Digest:
    """A digest of a supported algorithm with canonical lower-case hex.

    Malformed → DIGEST_INVALID; well-formed but an algorithm Berth does not
    implement → UNSUPPORTED.
    """
    m = DIGEST_RE.fullmatch(value or "")
    if not m:
        raise RegistryError(Code.DIGEST_INVALID, "invalid digest", detail={"digest": value[:300]})
    algorithm, hexpart = m.groups()
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise RegistryError(
            Code.UNSUPPORTED, "unsupported digest algorithm", detail={"digest": value[:300]}
        )
    if len(hexpart) != length or not re.fullmatch(r"[0-9a-f]+", hexpart):
        raise RegistryError(Code.DIGEST_INVALID, "invalid digest", detail={"digest": value[:300]})
    return Digest(algorithm, hexpart)


def looks_like_digest(reference: str) -> bool:
    return ":" in reference
