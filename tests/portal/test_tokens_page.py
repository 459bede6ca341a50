"""My tokens (portal/tokens.py): a signed-in user creates a token with the
permission picker, sees its secret once, lists it with its last use and revokes
it; nobody sees another's tokens there."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import PersonalAccessToken
from accounts.services import usage
from tests.conftest import basic
from tests.portal.test_pages import as_user

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/tokens/"


def token_service(user: str, secret: str) -> int:
    client = Client(HTTP_AUTHORIZATION=basic(user, secret))
    return client.get(
        "/service/token?service=harbor-registry&scope=repository:team/app:pull"
    ).status_code


def test_a_user_creates_sees_once_and_revokes_a_token(team):
    dev = as_user("dev")
    page = dev.get(PAGE)
    assert page.status_code == 200
    assert "No tokens yet." in page.content.decode()
    assert '<option value="team">' in page.content.decode()
    created = dev.post(
        PAGE,
        {
            "action": "create",
            "name": "laptop",
            "duration": "30",
            "project": "team",
            "access": ["repository:pull"],
        },
    )
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    body = created.content.decode()
    secret = re.search(r'id="berth-token-value">(berth_pat_[A-Za-z0-9]+)<', body).group(1)
    assert "docker login testserver -u dev" in body
    row = PersonalAccessToken.objects.get(user__username="dev", name="laptop")
    assert row.permissions == [
        {
            "kind": "project",
            "namespace": "team",
            "access": [{"resource": "repository", "action": "pull", "effect": "allow"}],
        }
    ]
    assert token_service("dev", secret) == 200
    usage.flush()
    again = dev.get(PAGE).content.decode()
    assert secret not in again
    assert f"berth_pat_{row.key}" in again and "Active" in again
    assert "never" not in again.split("laptop", 1)[1].split("</tr>", 1)[0]  # expires, used
    assert dev.post(PAGE, {"action": "revoke", "token": row.pk}).status_code == 302
    assert "Revoked" in dev.get(PAGE).content.decode()
    assert token_service("dev", secret) == 401


def test_the_picker_refuses_what_the_user_does_not_hold(team):
    guest = as_user("guest")
    r = guest.post(
        PAGE,
        {
            "action": "create",
            "name": "push",
            "duration": "30",
            "project": "team",
            "access": ["repository:push"],
        },
    )
    assert r.status_code == 200
    assert "does not hold" in r.content.decode()
    assert not PersonalAccessToken.objects.exists()


def test_nobody_sees_or_revokes_another_s_tokens(team):
    dev = as_user("dev")
    dev.post(
        PAGE,
        {
            "action": "create",
            "name": "mine",
            "duration": "-1",
            "project": "*",
            "access": ["repository:pull"],
        },
    )
    row = PersonalAccessToken.objects.get(name="mine")
    guest = as_user("guest")
    assert "mine" not in guest.get(PAGE).content.decode()
    r = guest.post(PAGE, {"action": "revoke", "token": row.pk})
    assert r.status_code == 200 and 'id="berth-token-refused"' in r.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is None
    assert Client().get(PAGE).status_code == 302  # to sign-in
