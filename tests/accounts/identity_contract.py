"""The contract every identity source runs (local users, robots; LDAP, OIDC and
CAS when they come): one suite, as a storage backend runs the storage suite.

A source's test module subclasses ``IdentityContract`` (its name starting with
``Test``) and provides the ``subject`` fixture: a ``Subject`` who holds pull and
list on the private project ``contract``, with hooks to disable it and to
change its secret. The suite checks each entry point — ``/v2`` Basic, the token
service and the API — through the identity seam (``accounts/identity.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
from django.test import Client

from accounts.models import Project
from tests.conftest import RegistryClient, basic

PROJECT = "contract"
REPOSITORY = f"{PROJECT}/app"
TOKEN_PATH = f"/service/token?service=harbor-registry&scope=repository:{REPOSITORY}:pull"
API_PATH = f"/api/v2.0/projects/{PROJECT}/repositories"


@dataclass
class Subject:
    name: str
    secret: str
    unknown_name: str  # a name of the same form that no account has
    disable: Callable[[], None]
    change_secret: Callable[[], str]  # returns the new secret


def _answers(name: str, secret: str) -> dict[str, tuple[int, bytes, str]]:
    """Each entry point's (status, body, challenge) for these credentials."""
    auth = basic(name, secret)
    out = {}
    r = RegistryClient(HTTP_AUTHORIZATION=auth).get(f"/v2/{REPOSITORY}/tags/list")
    out["v2"] = (r.status_code, r.content, r.get("WWW-Authenticate", ""))
    r = Client(HTTP_AUTHORIZATION=auth).get(TOKEN_PATH)
    out["token"] = (r.status_code, r.content, r.get("WWW-Authenticate", ""))
    r = Client(HTTP_AUTHORIZATION=auth).get(API_PATH)
    out["api"] = (r.status_code, r.content, r.get("WWW-Authenticate", ""))
    return out


def _statuses(name: str, secret: str) -> dict[str, int]:
    return {where: status for where, (status, _, _) in _answers(name, secret).items()}


REFUSED = {"v2": 401, "token": 401, "api": 401}


@pytest.mark.django_db(transaction=True)
class IdentityContract:
    @pytest.fixture
    def project(self, bootstrapped) -> Project:
        return Project.objects.create(name=PROJECT, owner_id=1, public=False)

    @pytest.fixture
    def subject(self, project) -> Subject:
        raise NotImplementedError

    def test_right_credentials_authenticate_everywhere(self, subject):
        answers = _answers(subject.name, subject.secret)
        status, body, _ = answers["v2"]
        assert status == 404, body  # past authentication: the repository is empty
        assert json.loads(body)["errors"][0]["code"] == "NAME_UNKNOWN"
        status, body, _ = answers["token"]
        assert status == 200, body
        claims = jwt.decode(json.loads(body)["token"], options={"verify_signature": False})
        assert claims["sub"] == subject.name
        assert claims["access"][0]["actions"] == ["pull"]
        status, body, _ = answers["api"]
        assert status == 200, body
        assert (
            RegistryClient(HTTP_AUTHORIZATION=basic(subject.name, subject.secret))
            .get("/v2/")
            .status_code
            == 200
        )

    def test_wrong_credentials_are_refused_without_telling_who_exists(self, subject):
        wrong_secret = _answers(subject.name, subject.secret + "x")
        unknown_name = _answers(subject.unknown_name, subject.secret)
        assert {k: v[0] for k, v in wrong_secret.items()} == REFUSED
        assert wrong_secret == unknown_name

    def test_disabled_subject_is_refused(self, subject):
        assert _statuses(subject.name, subject.secret)["token"] == 200  # proof cached
        subject.disable()
        assert _statuses(subject.name, subject.secret) == REFUSED

    def test_changed_secret_revokes_the_cached_proof(self, subject):
        assert _statuses(subject.name, subject.secret) == {"v2": 404, "token": 200, "api": 200}
        new = subject.change_secret()
        assert _statuses(subject.name, subject.secret) == REFUSED
        assert _statuses(subject.name, new) == {"v2": 404, "token": 200, "api": 200}
