"""The API's one JSON parser: DRF's, with a bound on nesting. The json module
recurses in C and raises RecursionError (a 500) on a deep enough array; here a
body nesting more than MAX_DEPTH arrays and objects is a 400 before any view
runs. Its size is bounded before parsing by Django's DATA_UPLOAD_MAX_MEMORY_SIZE
(DRF reads it through ``request.body``; accounts/api/errors.py answers 413)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import exceptions, parsers

MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        too_deep = exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if _depth(data) > MAX_DEPTH:
            raise too_deep
        return data


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
