"""The manifest read's fast path (registry/oci/fast.py) answers exactly what the
full path answers, and leaves every other case to it.

The requests go through ``portal.wsgi.application``, the WSGI entry granian
calls, so both paths are the ones production runs. ``RegistryHandler.__call__``
(the full /v2 path) is wrapped to record which requests reached it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.access import Actor
from accounts.services.users import user_set_active
from audit.models import AuditEvent
from audit.services import flush
from portal.wsgi import RegistryHandler, application
from tests.conftest import ADMIN, basic

from .helpers import InProcess

NAME = "library/fast"


class Reply:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body


def call(method: str, path: str, auth: str = "", raw: str | None = None, **extra: str) -> Reply:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "RAW_URI": raw if raw is not None else path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.9",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        **({"HTTP_AUTHORIZATION": auth} if auth else {}),
        **extra,
    }
    started: list[tuple[str, list[tuple[str, str]]]] = []
    result = application(environ, lambda status, headers: started.append((status, headers)))
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return Reply(started[0][0], started[0][1], body)


@pytest.fixture
def full_path() -> Iterator[mock.MagicMock]:
    original = RegistryHandler.__call__
    with mock.patch.object(RegistryHandler, "__call__", autospec=True, side_effect=original) as spy:
        yield spy


def token(scope: str, who: tuple[str, str] = ADMIN) -> str:
    r = Client(HTTP_AUTHORIZATION=basic(*who)).get(
        "/service/token", {"service": "harbor-registry", "scope": scope}
    )
    assert r.status_code == 200, r.content
    return "Bearer " + r.json()["token"]


@pytest.fixture
def pushed(v2) -> tuple[str, bytes]:
    return InProcess(v2).push_image(NAME, "v1")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_a_cached_read_is_answered_without_the_full_path_and_alike(pushed, full_path, method, by):
    digest, body = pushed
    path = f"/v2/{NAME}/manifests/" + ("v1" if by == "tag" else digest)
    bearer = token(f"repository:{NAME}:pull")
    first = call(method, path, bearer)  # verifies the token, fills the cache
    assert full_path.call_count == 1
    second = call(method, path, bearer)
    assert full_path.call_count == 1, "the second read took the full path"
    assert (first.status, second.status) == (200, 200)
    assert second.headers == first.headers
    assert second.headers["Docker-Content-Digest"] == digest
    assert second.headers["Content-Length"] == str(len(body))
    assert second.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert second.body == first.body == (body if method == "GET" else b"")


def test_fast_reads_are_audited_as_pulls(pushed):
    bearer = token(f"repository:{NAME}:pull")
    flush()
    before = AuditEvent.objects.filter(operation="pull").count()
    for _ in range(3):
        assert call("GET", f"/v2/{NAME}/manifests/v1", bearer).status == 200
    assert call("HEAD", f"/v2/{NAME}/manifests/v1", bearer).status == 200  # no pull
    flush()
    rows = AuditEvent.objects.filter(operation="pull").order_by("-id")[:3]
    assert AuditEvent.objects.filter(operation="pull").count() == before + 3
    assert {(r.username, r.resource, r.client_ip) for r in rows} == {
        ("admin", f"{NAME}:v1", "127.0.0.9")
    }


def test_a_moved_tag_is_seen_at_once(v2, pushed, full_path):
    bearer = token(f"repository:{NAME}:pull")
    call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    new_digest, new_body = InProcess(v2).push_image(NAME, "v1")
    moved = call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    assert moved.headers["Docker-Content-Digest"] == new_digest
    assert moved.body == new_body


def test_a_token_without_pull_on_the_repository_goes_to_the_full_path(pushed, full_path):
    assert call("GET", f"/v2/{NAME}/manifests/v1", token(f"repository:{NAME}:pull")).status == 200
    other = token("repository:library/other:pull")  # the manifest is cached now
    for _ in range(2):
        r = call("GET", f"/v2/{NAME}/manifests/v1", other)
        assert r.status == 401
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert full_path.call_count == 3


def test_no_credentials_and_basic_go_to_the_full_path(pushed, full_path):
    digest, _ = pushed
    assert call("GET", f"/v2/{NAME}/manifests/v1").status == 401
    r = call("GET", f"/v2/{NAME}/manifests/v1", basic(*ADMIN))
    assert (r.status, r.headers["Docker-Content-Digest"]) == (200, digest)
    assert call("GET", f"/v2/{NAME}/manifests/v1", "Bearer not-a-token").status == 401
    assert full_path.call_count == 3


def test_a_disabled_users_cached_token_stops_at_once(pushed, full_path):
    User = get_user_model()
    user = User.objects.create_user("fastops", password="Fast-ops-12345", is_superuser=True)
    bearer = token(f"repository:{NAME}:pull", ("fastops", "Fast-ops-12345"))
    assert call("GET", f"/v2/{NAME}/manifests/v1", bearer).status == 200
    assert call("GET", f"/v2/{NAME}/manifests/v1", bearer).status == 200
    assert full_path.call_count == 1
    admin = Actor(kind="user", id=1, name="admin", sysadmin=True)
    user_set_active(actor=admin, user_id=user.pk, active=False)
    r = call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    assert r.status == 401
    assert full_path.call_count == 2


def test_an_encoded_separator_in_the_raw_path_goes_to_the_full_path(pushed, full_path):
    bearer = token(f"repository:{NAME}:pull")
    call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    r = call("GET", f"/v2/{NAME}/manifests/v1", bearer, raw="/v2/library%2Ffast/manifests/v1")
    assert r.status == 400
    assert b"NAME_INVALID" in r.body
    assert full_path.call_count == 2


def test_an_unknown_tag_and_a_bad_name_go_to_the_full_path(pushed, full_path):
    bearer = token(f"repository:{NAME}:pull")
    call("GET", f"/v2/{NAME}/manifests/v1", bearer)
    assert call("GET", f"/v2/{NAME}/manifests/nope", bearer).status == 404
    assert call("GET", "/v2/Library/Fast/manifests/v1", bearer).status == 400
    assert full_path.call_count == 3
