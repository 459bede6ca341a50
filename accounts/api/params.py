"""The one way in for query parameters and JSON bodies of Harbor's API: each view
declares what it takes as a DRF serializer built from these fields, and reads it
through ``query()`` or ``fields()``. Numbers are ASCII digits within a range,
ids positive 64-bit keys, flags Harbor's spellings (kit/params.py); anything
else is a 400 in Harbor's envelope, before a service or the database sees it.
Bodies arrive already bounded in size and depth (accounts/api/codec.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.urls import register_converter
from rest_framework import serializers
from rest_framework.request import Request

from accounts.api.base import body
from kit import params
from kit.errors import Invalid


@contextmanager
def _refused(name: str) -> Iterator[None]:
    """kit.params' Invalid as the field's validation error (the name is DRF's to add)."""
    try:
        yield
    except Invalid as exc:
        raise serializers.ValidationError(str(exc).removeprefix(f"{name} ")) from None


class Integer(serializers.Field):
    """An integer in [minimum, maximum] (ASCII digits in a query string, a JSON
    integer in a body: never "²", 1.5, true or "1e3")."""

    def __init__(self, *, minimum: int = 0, maximum: int = params.MAX_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def to_internal_value(self, data: Any) -> int:
        name = self.field_name or "value"
        with _refused(name):
            return params.integer(data, name=name, minimum=self.minimum, maximum=self.maximum)

    def to_representation(self, value: int) -> int:
        return value


class Id(Integer):
    """A database key: 1 to 2**63 - 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, **kwargs)


class Flag(serializers.Field):
    """A boolean: JSON true/false, or true/false/True/False/1/0 in a query string."""

    def to_internal_value(self, data: Any) -> bool:
        name = self.field_name or "value"
        with _refused(name):
            return params.boolean(data, name=name)

    def to_representation(self, value: bool) -> bool:
        return value


class Text(serializers.CharField):
    """A string as sent (no trimming); numbers are not strings."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("must be a string")
        return str(super().to_internal_value(data))


class Paging(serializers.Serializer):
    """Harbor's ``page`` and ``page_size`` (empty: None, as if absent)."""

    page = Integer(required=False, allow_null=True)
    page_size = Integer(required=False, allow_null=True)


def _valid(form: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    checked = form(data=data)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


def query(request: Request, form: type[serializers.Serializer]) -> dict[str, Any]:
    """The query parameters ``form`` declares, parsed (400 on any bad one)."""
    return _valid(form, request.query_params)


def fields(request: Request, form: type[serializers.Serializer]) -> dict[str, Any]:
    """The JSON object body's fields ``form`` declares, parsed (400 on any bad one)."""
    return _valid(form, body(request))


class IdConverter:
    """``<id:name>`` in the API's routes: a database key (ASCII digits, 1 to
    2**63 - 1). Anything else does not match the route: Harbor's JSON 404."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        key = params.identifier(value)
        if key is None:
            raise ValueError(value)
        return key

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
