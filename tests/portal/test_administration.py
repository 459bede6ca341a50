"""Administration for system administrators, in the portal: users (create,
reset a password, the sysadmin flag, disable), system robots, settings and the
audit log are reachable from the admin's index and work through the services."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import SystemSetting, User
from audit.models import AuditEvent
from audit.services import flush
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

USERS = "/admin/accounts/user/"


def sysadmin() -> Client:
    client = Client()
    client.force_login(User.objects.get(pk=1))
    return client


def test_the_index_offers_every_administration_page_to_sysadmins_only(team):
    index = sysadmin().get("/admin/").content.decode()
    for page in (
        USERS,
        "/admin/accounts/robot/",
        "/admin/accounts/systemsetting/",
        "/admin/audit/auditevent/",
        "/admin/registry/blob/",
    ):
        assert f'href="{page}"' in index, page
    padmin = Client()
    padmin.force_login(User.objects.get(username="padmin"))
    index = padmin.get("/admin/").content.decode()
    assert f'href="{USERS}"' not in index
    assert 'href="/admin/accounts/systemsetting/"' not in index


def test_a_sysadmin_resets_a_password_through_the_users_service(team):
    dev = User.objects.get(username="dev")
    stamp = dev.stamp
    page = f"{USERS}{dev.pk}/password/"
    admin = sysadmin()
    form = admin.get(page).content.decode()
    assert 'name="usable_password"' not in form  # Berth's users sign in with a password
    r = admin.post(page, {"password1": "weakweak", "password2": "weakweak"})
    assert r.status_code == 200 and "password must have" in r.content.decode()
    assert User.objects.get(pk=dev.pk).check_password(PASSWORD)
    r = admin.post(page, {"password1": "Reset1234", "password2": "Reset1234"})
    assert r.status_code == 302, r.content.decode()[:2000]
    dev = User.objects.get(pk=dev.pk)
    assert dev.check_password("Reset1234") and dev.stamp != stamp  # its tokens revoked
    flush()
    event = AuditEvent.objects.get(operation="update", resource_type="user")
    assert (event.username, event.resource, event.detail) == ("admin", "dev", {"field": "password"})
    assert Client().post("/", {"username": "dev", "password": "Reset1234"}).status_code == 302
    assert Client().post("/", {"username": "dev", "password": PASSWORD}).status_code == 200


def test_settings_changed_in_the_admin_take_effect(team):
    admin = sysadmin()
    assert Client().get("/register/").status_code == 404
    r = admin.post(
        "/admin/accounts/systemsetting/add/", {"key": "self_registration", "value": "true"}
    )
    assert r.status_code == 302
    assert SystemSetting.objects.get(key="self_registration").value is True
    assert 'href="/register/"' in Client().get("/").content.decode()
    r = admin.post("/admin/accounts/systemsetting/self_registration/change/", {"value": '"yes"'})
    assert r.status_code == 200  # refused by the service: a form error, nothing stored
    assert SystemSetting.objects.get(key="self_registration").value is True


def test_the_audit_log_lists_and_filters_what_happened(team):
    admin = sysadmin()
    admin.post(
        f"{USERS}add/",
        {
            "username": "audited",
            "email": "a@example.com",
            "realname": "",
            "password1": "Strong123",
            "password2": "Strong123",
        },
    )
    assert User.objects.filter(username="audited").exists()
    flush()
    page = admin.get("/admin/audit/auditevent/?operation__exact=create").content.decode()
    assert "audited" in page
    page = admin.get("/admin/audit/auditevent/?q=audited").content.decode()
    assert "audited" in page
