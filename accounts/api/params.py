"""The one way in for query parameters and JSON bodies of Harbor's API: each view
declares what it takes as a DRF serializer built from these fields, and reads it
through ``query()``, ``fields()`` or ``strings()``. In a query string numbers are
ASCII digits within a range, ids positive 64-bit keys, flags Harbor's spellings
(kit/params.py). In a JSON body each value has the JSON type Harbor's schema
gives it, as Harbor's Go server requires: a number is a JSON integer (never
"2"), a flag a JSON boolean (never "true"), a string a JSON string (never 2);
``null`` for an optional field is as if it were absent. Anything else is a 400
in Harbor's envelope, before a service or the database sees it. Bodies arrive
already bounded in size and depth, UTF-8, without repeated keys
(accounts/api/codec.py)."""

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

BODY = "json"  # the serializer context key: the data is a JSON body, not a query string


def _in_body(field: serializers.Field) -> bool:
    return bool(field.context.get(BODY))


@contextmanager
def _refused(name: str) -> Iterator[None]:
    """kit.params' Invalid as the field's validation error (the name is DRF's to add)."""
    try:
        yield
    except Invalid as exc:
        raise serializers.ValidationError(str(exc).removeprefix(f"{name} ")) from None


class Integer(serializers.Field):
    """An integer in [minimum, maximum] (ASCII digits in a query string, a JSON
    integer in a body: never "²", 1.5, true, "1e3", nor "2" in a body)."""

    def __init__(self, *, minimum: int = 0, maximum: int = params.MAX_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def to_internal_value(self, data: Any) -> int:
        name = self.field_name or "value"
        if isinstance(data, str) and _in_body(self):
            raise serializers.ValidationError("must be an integer")
        with _refused(name):
            return params.integer(data, name=name, minimum=self.minimum, maximum=self.maximum)

    def to_representation(self, value: int) -> int:
        return value


class Id(Integer):
    """A database key: 1 to 2**63 - 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, **kwargs)


class Flag(serializers.Field):
    """A boolean: JSON true/false in a body; Harbor's spellings (true/false/
    True/False/1/0…) in a query string, where an empty value is as if absent."""

    def to_internal_value(self, data: Any) -> bool | None:
        name = self.field_name or "value"
        if not isinstance(data, bool) and _in_body(self):
            raise serializers.ValidationError("must be true or false")
        with _refused(name):
            return (
                params.optional_boolean(data, name=name)
                if isinstance(data, str)
                else params.boolean(data, name=name)
            )

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


class Closed(serializers.Serializer):
    """A body whose every key must be a declared field (DRF ignores others)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({unknown[0]: "unknown field"})
        return super().to_internal_value(data)


def _valid(form: type[serializers.Serializer], data: Any, *, body: bool) -> dict[str, Any]:
    checked = form(data=data, context={BODY: body})
    checked.is_valid(raise_exception=True)
    # null for an optional field is as if it were absent (Harbor's Go server
    # leaves such a field at its zero value).
    return {key: value for key, value in checked.validated_data.items() if value is not None}


def query(request: Request, form: type[serializers.Serializer]) -> dict[str, Any]:
    """The query parameters ``form`` declares, parsed (400 on any bad one)."""
    return _valid(form, request.query_params, body=False)


def fields(request: Request, form: type[serializers.Serializer]) -> dict[str, Any]:
    """The JSON object body's fields ``form`` declares, parsed (400 on any bad one)."""
    return _valid(form, body(request), body=True)


def strings(request: Request) -> dict[str, str]:
    """The JSON object body, every value a string (Harbor's project metadata;
    400 otherwise)."""
    return dict(serializers.DictField(child=Text()).run_validation(body(request)))


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
