"""JSON in and out of the Harbor API (``REST_FRAMEWORK`` in portal/settings.py):
DRF's parser and renderer, the API's only ones, with the rules every body gets.

In: a body's size is bounded before parsing by Django's
DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads it through ``request.body``;
accounts/api/errors.py answers 413). Its nesting is bounded: the json module
recurses in C and raises RecursionError (a 500) on a deep enough array; a body
nesting more than MAX_DEPTH arrays and objects is a 400 before any view runs.
A body whose JSON escapes a lone surrogate (``"\\ud800"``) is refused with a
400, for every endpoint at once (project descriptions, realnames, robot
descriptions, rule patterns…), before a view sees it; so is a body that is not
UTF-8 (JSON is UTF-8, RFC 8259: a ``charset`` in the Content-Type changes
nothing) and one that repeats a key within an object (which value would count is
the parser's whim; security case A9). All of it costs one pass over the bytes.
Out: a string no UTF-8 can
carry (a row written before that check) is sent as its ``\\u`` escape rather than
failing the whole response with a 500.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from kit.jsontext import lone_surrogate_at

MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        too_deep = ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            text = stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"JSON parse error - the body is not UTF-8 (byte {exc.start}): "
                "JSON text must be UTF-8"
            ) from None
        try:
            data = json.loads(text, object_pairs_hook=_unique, parse_constant=strict_constant)
        except RecursionError:
            raise too_deep from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _depth(data) > MAX_DEPTH:
            raise too_deep
        where = lone_surrogate_at(data)
        if where is not None:
            raise ParseError(
                f"JSON parse error - a lone surrogate (\\ud800-\\udfff) at {where}: "
                "text must be valid Unicode"
            )
        return data


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict, refusing a key given twice."""
    members = dict(pairs)
    if len(members) != len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for key in members if keys.count(key) > 1)
        raise ValueError(f"duplicate key {repeated!r} in an object")
    return members


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (iteratively, and only
    until it passes MAX_DEPTH)."""
    depth, pending = 0, [(value, 1)]
    while pending and depth <= MAX_DEPTH:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth = max(depth, level)
            pending.extend((child, level + 1) for child in item)
    return depth


class _EscapedJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


class JSONRenderer(renderers.JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _EscapedJSONRenderer().render(data, accepted_media_type, renderer_context)
