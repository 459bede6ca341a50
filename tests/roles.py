"""Role fixtures: a private project with one user per Harbor role, plus an outsider
(registered as a fixture in tests/conftest.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Member, Project, Role, User
from tests.conftest import ADMIN, basic

PASSWORD = "Secret123"
ROLE_USERS = {
    "padmin": Role.PROJECT_ADMIN,
    "maint": Role.MAINTAINER,
    "dev": Role.DEVELOPER,
    "guest": Role.GUEST,
    "lguest": Role.LIMITED_GUEST,
}


@pytest.fixture
def team(bootstrapped):
    """Project `team` (private) and `pub` (public), with members of every role."""
    team, _ = Project.objects.get_or_create(name="team", defaults={"owner_id": 1})
    Project.objects.create(name="pub", owner_id=1, public=True)
    for name, role in ROLE_USERS.items():
        user = User.objects.create_user(name, password=PASSWORD)
        Member.objects.create(project=team, user=user, role=role)
    User.objects.create_user("outsider", password=PASSWORD)
    return team


def api(user: str | None = None, password: str = PASSWORD) -> Client:
    """The full-stack client, authenticated by Basic as ``user`` (or anonymous)."""
    if user is None:
        return Client()
    if user == "admin":
        return Client(HTTP_AUTHORIZATION=basic(*ADMIN))
    return Client(HTTP_AUTHORIZATION=basic(user, password))


def token(user: str | None, *scopes: str, password: str = PASSWORD) -> dict:
    query = "&".join(["service=harbor-registry", *(f"scope={s}" for s in scopes)])
    r = api(user, password).get(f"/service/token?{query}")
    assert r.status_code == 200, r.content
    return r.json()


def granted(user: str | None, scope: str, password: str = PASSWORD) -> list[str]:
    import jwt

    claims = jwt.decode(
        token(user, scope, password=password)["token"], options={"verify_signature": False}
    )
    return claims["access"][0]["actions"]
