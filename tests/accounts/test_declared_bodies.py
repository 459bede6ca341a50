"""Issue 13, the rest of "one way in for every body": the one parser refuses
duplicate keys and bytes that are not UTF-8 (security case A9), and every body
of the identity and access API goes through declared fields, so a value of the
wrong JSON type is a 400 in Harbor's envelope (as Harbor's Go server answers),
with nothing changed."""

from __future__ import annotations

import json

import pytest

from accounts.models import Project
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


def raw(client, method, path, data: bytes, content_type="application/json"):
    return client.generic(method.upper(), path, data, content_type=content_type)


def refused(r) -> str:
    assert r.status_code == 400, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "BAD_REQUEST"
    return error["message"]


# A9: duplicate keys and invalid UTF-8 ------------------------------------------------


DUPLICATES = {
    "top level": b'{"project_name": "fresh", "project_name": "other"}',
    "nested": b'{"project_name": "fresh", "metadata": {"public": "false", "public": "true"}}',
    "deep in a list": b'{"project_name": "fresh", "x": [{"a": 1, "a": 2}]}',
}


@pytest.mark.parametrize("case", DUPLICATES)
def test_a_body_with_a_duplicate_key_is_a_400(team, case):
    message = refused(raw(api("admin"), "post", "/api/v2.0/projects", DUPLICATES[case]))
    assert "duplicate key" in message
    assert not Project.objects.filter(name__in=["fresh", "other"]).exists()


INVALID_UTF8 = {
    "a lone continuation byte": b'{"project_name": "fresh", "metadata": {"severity": "\x80"}}',
    "latin-1": b'{"project_name": "fr\xe9sh"}',
    "a truncated sequence": b'{"project_name": "fresh\xe2\x82"}',
    "an encoded surrogate": b'{"project_name": "fresh\xed\xa0\x80"}',
    "an overlong slash": b'{"project_name": "fresh\xc0\xaf"}',
}


@pytest.mark.parametrize("case", INVALID_UTF8)
def test_a_body_that_is_not_utf8_is_a_400(team, case):
    before = Project.objects.count()
    message = refused(raw(api("admin"), "post", "/api/v2.0/projects", INVALID_UTF8[case]))
    assert "UTF-8" in message
    assert Project.objects.count() == before


def test_a_charset_other_than_utf8_does_not_make_bytes_text(team):
    """JSON is UTF-8 (RFC 8259); a declared latin-1 does not turn 0xE9 into é."""
    r = raw(
        api("admin"),
        "post",
        "/api/v2.0/projects",
        b'{"project_name": "fresh", "metadata": {"severity": "\xe9"}}',
        content_type="application/json; charset=latin-1",
    )
    refused(r)
    assert not Project.objects.filter(name="fresh").exists()


def test_utf8_text_and_repeated_keys_in_different_objects_are_fine(team):
    body = {"project_name": "fresh", "metadata": {"public": "false", "severity": "h\u00e9"}}
    text = json.dumps(body, ensure_ascii=False).encode()
    r = raw(api("admin"), "post", "/api/v2.0/projects", text)
    assert r.status_code == 201, r.content
    assert Project.objects.get(name="fresh").metadata["severity"] == "h\u00e9"
