"""Audit events in the admin: read-only, filtered by project for project admins."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.events import Operation, Resource
from audit.models import AuditEvent
from audit.services import record
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def browser(username: str, password: str) -> Client:
    client = Client()
    r = client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )
    assert r.status_code == 302, r.content[:500]
    return client


@pytest.fixture
def events(team):
    from accounts.access import Actor

    someone = Actor(kind="user", name="someone")
    for i in range(30):
        record(
            actor=someone,
            operation=Operation.PUSH,
            resource_type=Resource.ARTIFACT,
            resource=f"team/app:v{i}",
            project="team",
        )
        record(
            actor=someone,
            operation=Operation.PUSH,
            resource_type=Resource.ARTIFACT,
            resource=f"other/app:v{i}",
            project="other",
        )


def test_sysadmin_sees_all_events_read_only(events, django_assert_max_num_queries):
    from tests.conftest import ADMIN

    client = browser(*ADMIN)
    with django_assert_max_num_queries(8):
        page = client.get("/admin/audit/auditevent/")
    assert page.status_code == 200
    assert b"team/app:v29" in page.content and b"other/app:v29" in page.content
    event = AuditEvent.objects.first()
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert AuditEvent.objects.count() == 60
    found = client.get("/admin/audit/auditevent/?q=other/app:v3")
    assert b"other/app:v3" in found.content and b"team/app:v3<" not in found.content


def test_project_admin_sees_only_its_projects_events(events):
    client = browser("padmin", PASSWORD)
    page = client.get("/admin/audit/auditevent/")
    assert page.status_code == 200
    assert b"team/app:v1" in page.content
    assert b"other/app" not in page.content
    theirs = AuditEvent.objects.filter(project_name="other").first()
    r = client.get(f"/admin/audit/auditevent/{theirs.pk}/change/")
    assert r.status_code in (302, 403, 404)
