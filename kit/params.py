"""Numbers and flags from the outside (query strings, path segments, JSON values),
parsed in one place for every surface: the API's fields (accounts/api/params.py),
/v2's ``n``, a project reference that may be an id.

Written by hand because the rules are Berth's and short: ``str.isdigit()`` is
true for "²" and "٣" (which ``int()`` then refuses or reads), ``int()`` takes
"1_000", " 7 " and 4,300 digits, and a database key is a signed 64-bit integer.
Here an integer is ASCII digits (a leading "-" only where negatives are allowed),
at most 19 of them, inside the caller's range; anything else is ``Invalid`` (400).
"""

from __future__ import annotations

import re

from kit.errors import Invalid

MAX_ID = 2**63 - 1  # the largest key a 64-bit signed database column holds
_INTEGER = re.compile(r"-?[0-9]{1,19}")
# Harbor's forms: Go's strconv.ParseBool, which its server reads parameters
# and headers with.
TRUE = frozenset({"true", "True", "TRUE", "t", "T", "1"})
FALSE = frozenset({"false", "False", "FALSE", "f", "F", "0"})


def integer(raw: object, *, name: str, minimum: int = 0, maximum: int = MAX_ID) -> int:
    """``raw`` (a string of ASCII digits, or a JSON integer, never a boolean) as
    an int in [minimum, maximum]."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _INTEGER.fullmatch(raw):
        value = int(raw)
    else:
        raise Invalid(f"{name} must be an integer")
    if not minimum <= value <= maximum:
        raise Invalid(f"{name} must be between {minimum} and {maximum}")
    return value


def identifier(raw: str) -> int | None:
    """``raw`` as a database key (1 to MAX_ID) if it is one, else None: for
    references that are an id or a name."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def boolean(raw: object, *, name: str) -> bool:
    """A JSON boolean, or Harbor's spellings of one in a query string."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw in TRUE:
        return True
    if isinstance(raw, str) and raw in FALSE:
        return False
    raise Invalid(f"{name} must be true or false")


def optional_boolean(raw: str | None, *, name: str) -> bool | None:
    """A boolean query parameter or header, as :func:`boolean` reads it; None
    when absent or empty."""
    if raw is None or raw.strip() == "":
        return None
    return boolean(raw.strip(), name=name)
