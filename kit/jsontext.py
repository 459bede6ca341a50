"""Checks on parsed JSON that the parser itself does not make.

JSON text may escape a lone UTF-16 surrogate (``"\\ud800"``); Python's parser
turns it into a ``str`` that no UTF-8 can carry, so it fails later, far from the
request (a 500 on every read of the row). Whoever parses a body from a client
asks :func:`lone_surrogate_at` and refuses it: the Harbor API's parser
(``accounts/api/codec.py``) and the manifest parser (``registry/manifests.py``).
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_MAX = 200


def lone_surrogate_at(value: Any) -> str | None:
    """Where (``$.a[0].b``) the first string, key or value, holding a lone
    surrogate sits in a parsed JSON value; ``None`` when there is none. A pair
    escaped as two ``\\u`` escapes is one character to the parser, and passes.
    Iterative: as deep as the parser went, with no recursion of its own."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path[:_PATH_MAX]
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"{path} (a key)"[:_PATH_MAX]
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None
