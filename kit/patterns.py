"""Every pattern a user supplies (immutable tag rules now; retention, replication
filters and OIDC group filters next) is compiled here, once, and matched by RE2:
an automaton, so a match costs time linear in the text whatever the pattern
(issue 13: a backtracking glob let one project's rule stall the whole server).

Two kinds, as Harbor and its users write them:

- ``doublestar`` (:func:`glob`): Harbor's doublestar globs. ``*`` is any run of
  characters within one path component, ``?`` one such character, ``[a-z]``,
  ``[abc]``, ``[!x]`` / ``[^x]`` one character of (or not of) a class, ``{a,b}``
  one of the alternatives (nestable), ``**`` as a whole component any number of
  components (``**/x`` matches ``x`` and ``a/b/x``; ``a/**`` everything under
  ``a``), ``\\`` escapes the next character. The whole text must match.
- ``regex`` (:func:`regex`): RE2's syntax (Go's and Python's without
  backreferences and look-around); it matches anywhere in the text, so anchor it
  with ``^…$`` to match the whole.

Compiling checks the limits below and raises :class:`kit.errors.Invalid` with a
message the API shows as a 400. Written by hand on purpose: the glob-to-RE2
translation is small, and the glob libraries on PyPI match with Python's
backtracking ``re`` (the failure this module exists to prevent).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import re2

from kit.errors import Invalid

MAX_LENGTH = 255  # characters of a doublestar pattern (Harbor's column)
MAX_REGEX_LENGTH = 1024
MAX_WILDCARDS = 32  # '*', '**', '?' and classes in one glob
MAX_ALTERNATIVES = 32  # ',' and '{' in one glob
MAX_NESTING = 4  # '{' inside '{'
MAX_PROGRAM = 2000  # RE2 instructions: bounds memory, and counted repeats in regexes
MAX_MEM = 2 << 20  # bytes RE2 may use per pattern (its DFA falls back to the NFA past it)

_STAR = "[^/]*"
_ONE = "[^/]"
_BOUNDARY_BEFORE = {"", "/", "{", ","}
_BOUNDARY_AFTER = {"", "/", "}", ","}


def _options() -> Any:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False  # a refused pattern is the user's, not an operator's, news
    options.never_capture = True
    options.dot_nl = True
    return options


@dataclass(frozen=True)
class Pattern:
    """A compiled user pattern: ``matches(text)`` in time linear in ``text``."""

    kind: str
    source: str
    regex: Any = field(repr=False, compare=False)  # re2's compiled program
    whole: bool = True  # doublestar: the whole text; regex: anywhere

    @property
    def program_size(self) -> int:
        return int(self.regex.programsize)

    def matches(self, text: str) -> bool:
        try:
            found = self.regex.fullmatch(text) if self.whole else self.regex.search(text)
        except UnicodeEncodeError:  # a lone surrogate: no pattern can name it
            return False
        return found is not None


def _refuse_controls(pattern: str, what: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in pattern):
        raise Invalid(f"the {what} holds a control character")
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"the {what} holds a lone surrogate (\\ud800-\\udfff)") from None


def _compile(kind: str, pattern: str, translated: str, whole: bool) -> Pattern:
    try:
        program = re2.compile(translated, _options())
    except re2.error as exc:
        message = exc.args[0] if exc.args else b""
        detail = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        raise Invalid(f"the {kind} pattern is not valid: {detail}"[:300]) from None
    if program.programsize > MAX_PROGRAM:
        raise Invalid(
            f"the {kind} pattern is too complex ({program.programsize} steps; "
            f"at most {MAX_PROGRAM}): use fewer wildcards, alternatives or repeats"
        )
    return Pattern(kind=kind, source=pattern, regex=program, whole=whole)


def glob(pattern: str) -> Pattern:
    """A doublestar pattern, checked and compiled (cached: rules are matched on
    every push)."""
    if not isinstance(pattern, str) or not pattern:
        raise Invalid("a doublestar pattern is required")
    return _glob(pattern)


def regex(pattern: str) -> Pattern:
    """A regular expression in RE2's syntax, checked and compiled."""
    if not isinstance(pattern, str) or not pattern:
        raise Invalid("a regular expression is required")
    return _regex(pattern)


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> Pattern:
    if len(pattern) > MAX_LENGTH:
        raise Invalid(f"the doublestar pattern is longer than {MAX_LENGTH} characters")
    _refuse_controls(pattern, "doublestar pattern")
    return _compile("doublestar", pattern, _Glob(pattern).translate(), whole=True)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Pattern:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise Invalid(f"the regular expression is longer than {MAX_REGEX_LENGTH} characters")
    _refuse_controls(pattern, "regular expression")
    return _compile("regex", pattern, pattern, whole=False)


def compile_pattern(kind: str, pattern: str) -> Pattern:
    """A pattern of the kind a selector names (``doublestar`` or ``regex``)."""
    if kind == "doublestar":
        return glob(pattern)
    if kind == "regex":
        return regex(pattern)
    raise Invalid("kind must be doublestar or regex")


class _Glob:
    """One pass over a doublestar pattern, emitting RE2 syntax."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.wildcards = 0
        self.alternatives = 0
        self.depth = 0

    def translate(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "*":
                self._star()
            elif c == "?":
                self._count_wildcard()
                self.out.append(_ONE)
                self.i += 1
            elif c == "[":
                self._class()
            elif c == "{":
                self.depth += 1
                self.alternatives += 1
                if self.depth > MAX_NESTING:
                    raise Invalid(f"the doublestar pattern nests more than {MAX_NESTING} braces")
                self._count_alternative()
                self.out.append("(?:")
                self.i += 1
            elif c == "," and self.depth:
                self.alternatives += 1
                self._count_alternative()
                self.out.append("|")
                self.i += 1
            elif c == "}" and self.depth:
                self.depth -= 1
                self.out.append(")")
                self.i += 1
            elif c == "\\":
                if self.i + 1 >= len(p):
                    raise Invalid("the doublestar pattern ends with a lone backslash")
                self.out.append(re2.escape(p[self.i + 1]))
                self.i += 2
            else:
                self.out.append(re2.escape(c))
                self.i += 1
        if self.depth:
            raise Invalid("the doublestar pattern has an unclosed '{'")
        return "".join(self.out)

    def _count_wildcard(self) -> None:
        self.wildcards += 1
        if self.wildcards > MAX_WILDCARDS:
            raise Invalid(f"the doublestar pattern has more than {MAX_WILDCARDS} wildcards")

    def _count_alternative(self) -> None:
        if self.alternatives > MAX_ALTERNATIVES:
            raise Invalid(
                f"the doublestar pattern has more than {MAX_ALTERNATIVES} braces and alternatives"
            )

    def _star(self) -> None:
        p, start = self.p, self.i
        while self.i < len(p) and p[self.i] == "*":
            self.i += 1
        self._count_wildcard()
        before = p[start - 1] if start else ""
        after = p[self.i] if self.i < len(p) else ""
        if self.i - start < 2 or before not in _BOUNDARY_BEFORE or after not in _BOUNDARY_AFTER:
            self.out.append(_STAR)  # '*', or '**' inside a component (as doublestar: '*')
        elif after == "/":
            self.out.append("(?:.*/)?")  # '**/': zero or more whole components
            self.i += 1
        else:
            self.out.append(".*")  # '**' last in its alternative: anything, '/' too

    def _class(self) -> None:
        """``[…]`` → one character of the class, never '/' (doublestar's rule)."""
        p = self.p
        self._count_wildcard()
        self.i += 1
        negate = self.i < len(p) and p[self.i] in "!^"
        if negate:
            self.i += 1
        items: list[str] = []
        while True:
            if self.i >= len(p):
                raise Invalid("the doublestar pattern has an unclosed '['")
            if p[self.i] == "]" and items:
                self.i += 1
                break
            low = self._class_char()
            if self.i + 1 < len(p) and p[self.i] == "-" and p[self.i + 1] != "]":
                self.i += 1
                high = self._class_char()
                if high < low:
                    raise Invalid(f"the doublestar pattern has a reversed range {low}-{high}")
                if low <= "/" <= high:
                    raise Invalid("a character class cannot match '/'")
                items.append(f"\\x{{{ord(low):x}}}-\\x{{{ord(high):x}}}")
            else:
                items.append(f"\\x{{{ord(low):x}}}")
        self.out.append(("[^/" if negate else "[") + "".join(items) + "]")

    def _class_char(self) -> str:
        p = self.p
        c = p[self.i]
        if c == "\\":
            if self.i + 1 >= len(p):
                raise Invalid("the doublestar pattern ends with a lone backslash")
            self.i += 1
            c = p[self.i]
        if c == "/":
            raise Invalid("a character class cannot match '/'")
        self.i += 1
        return c
