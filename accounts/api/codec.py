"""JSON in and out of the Harbor API (``REST_FRAMEWORK`` in portal/settings.py):
DRF's parser and renderer, with one rule each about lone surrogates.

In: a body whose JSON escapes a lone surrogate (``"\\ud800"``) is refused with a
400, for every endpoint at once (project descriptions, realnames, robot
descriptions, rule patterns…), before a view sees it. Out: a string no UTF-8 can
carry (a row written before that check) is sent as its ``\\u`` escape rather than
failing the whole response with a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError

from kit.jsontext import lone_surrogate_at


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = lone_surrogate_at(data)
        if where is not None:
            raise ParseError(
                f"JSON parse error - a lone surrogate (\\ud800-\\udfff) at {where}: "
                "text must be valid Unicode"
            )
        return data


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
