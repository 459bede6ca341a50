"""kit/patterns.py: every user-supplied pattern is compiled once, within limits,
and matched by RE2 (issue 13, item 1: a backtracking glob let one project's
immutable tag rule stall every request of the server)."""

from __future__ import annotations

import pytest
import re2

from kit import patterns
from kit.errors import Invalid

# The pattern of issue 13, item 1, and the repository it was paired with.
PATHOLOGICAL = "**/a/" * 10 + "b"
THIRTY = "/".join(["a"] * 30)

RE2_PROGRAM = type(re2.compile("a"))


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("**", "app/web/x", True),
        ("**/web", "web", True),
        ("**/web", "app/web", True),
        ("app/**", "app/web/x", True),
        ("app/**", "app", False),
        ("app/**/x", "app/x", True),
        ("app/**/x", "app/a/b/x", True),
        ("app/*", "app/web", True),
        ("app/*", "app/web/x", False),
        ("a**", "abc", True),  # '**' inside a component is '*'
        ("a**", "ab/c", False),
        ("v?", "v1", True),
        ("v?", "v12", False),
        ("?", "/", False),
        ("v[0-9].*", "v1.2", True),
        ("v[0-9].*", "vx.2", False),
        ("[!a]", "b", True),
        ("[^a]", "a", False),
        ("a/[!x]", "a//", False),  # a class never matches '/'
        ("{app,web}/**", "web/x", True),
        ("{app,{web,api}}", "api", True),
        ("{app,web}", "apps", False),
        ("x/{**/,}y", "x/q/y", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("a.b", "axb", False),  # '.' is literal
        ("latest", "latest", True),
        ("latest", "latest2", False),
    ],
)
def test_doublestar_follows_harbor(pattern, text, expected):
    assert patterns.glob(pattern).matches(text) is expected


def test_the_pathological_pattern_of_item_1_is_matched_by_re2():
    compiled = patterns.glob(PATHOLOGICAL)
    # The engine is RE2: an automaton whose time is linear in the text, whatever
    # the pattern, so no input can make it backtrack (no timing asserted here).
    assert isinstance(compiled.regex, RE2_PROGRAM)
    assert compiled.program_size <= patterns.MAX_PROGRAM
    assert compiled.matches(THIRTY) is False
    assert compiled.matches(THIRTY + "/b") is True
    # A text far longer than any name completes (Python's re needed 10-30 s+
    # for the 30 components above; a backtracking engine would never end here).
    assert compiled.matches("a/" * 200_000 + "c") is False


def test_regex_is_re2_and_searches():
    compiled = patterns.regex(r"^v\d+\.\d+$")
    assert isinstance(compiled.regex, RE2_PROGRAM)
    assert compiled.matches("v1.2") is True
    assert compiled.matches("v1.2-rc") is False
    assert patterns.regex("rc").matches("v1.2-rc1") is True  # unanchored: anywhere
    assert patterns.regex("(a+)+$").matches("a" * 100_000 + "b") is False


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("x" * 256, "longer than 255"),
        ("/".join(["*"] * 33), "more than 32 wildcards"),
        ("{" + ",".join("abcdefghijklmnopqrstuvwxyzABCDEFGH") + "}", "alternatives"),
        ("{{{{{a}}}}}", "nests more than 4"),
        ("[a", "unclosed '['"),
        ("{a,b", "unclosed '{'"),
        ("a\\", "lone backslash"),
        ("[/]", "cannot match '/'"),
        ("[.-0]", "cannot match '/'"),
        ("[z-a]", "reversed range"),
        ("v\x00", "control character"),
        ("v\ud800", "lone surrogate"),
        ("", "required"),
    ],
)
def test_doublestar_limits_refuse_with_a_clear_message(pattern, message):
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace("{", r"\{")):
        patterns.glob(pattern)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(\w)\1", "not valid"),  # backreferences need backtracking: RE2 has none
        ("(?=a)", "not valid"),
        ("a{999}b{999}c{999}", "too complex"),
        ("a" * 1025, "longer than 1024"),
        ("a\ud800", "lone surrogate"),
    ],
)
def test_regex_limits_refuse_with_a_clear_message(pattern, message):
    with pytest.raises(Invalid, match=message):
        patterns.regex(pattern)


def test_the_selector_kinds():
    assert patterns.compile_pattern("doublestar", "v*").matches("v1")
    assert patterns.compile_pattern("regex", "^v").matches("v1")
    with pytest.raises(Invalid, match="kind"):
        patterns.compile_pattern("glob", "v*")
