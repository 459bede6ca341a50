"""Self-registration at the sign-in page: offered, and answering, only while
the runtime setting ``self_registration`` is on; the account is made by the
users service (the password policy, no privileges, an audit row)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import SystemSetting, User
from audit.models import AuditEvent
from audit.services import flush

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {
    "username": "newcomer",
    "email": "new@example.com",
    "realname": "New Comer",
    "password1": "Strong123",
    "password2": "Strong123",
}


def test_off_by_default_no_link_and_a_404(team):
    client = Client()
    for page in ("/", "/admin/login/"):
        assert 'id="berth-register"' not in client.get(page).content.decode()
    assert client.get("/register/").status_code == 404
    assert client.post("/register/", FORM).status_code == 404
    assert not User.objects.filter(username="newcomer").exists()


def test_turned_off_at_runtime_the_page_goes_away(team, settings):
    settings.BERTH_SELF_REGISTRATION = True
    assert Client().get("/register/").status_code == 200
    SystemSetting.objects.create(key="self_registration", value=False)
    assert Client().get("/register/").status_code == 404


def test_a_visitor_registers_then_signs_in(team, settings):
    settings.BERTH_SELF_REGISTRATION = True
    client = Client()
    for page in ("/", "/admin/login/"):
        assert 'href="/register/"' in client.get(page).content.decode(), page
    r = client.post("/register/", {**FORM, "is_superuser": "on", "sysadmin_flag": "true"})
    assert r.status_code == 302 and r["Location"] == "/"
    user = User.objects.get(username="newcomer")
    assert (user.email, user.realname) == ("new@example.com", "New Comer")
    assert not user.is_superuser and not user.is_staff and user.is_active
    assert "Account newcomer created" in client.get("/").content.decode()
    r = client.post("/", {"username": "newcomer", "password": "Strong123"})
    assert r.status_code == 302
    assert 'id="berth-my-projects"' in client.get("/").content.decode()
    flush()
    event = AuditEvent.objects.get(operation="create", resource_type="user")
    assert event.resource == "newcomer"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password1": "weak", "password2": "weak"}, "password must have"),
        ({"password2": "Other1234"}, "The two passwords differ."),
        ({"username": "robot$x"}, "invalid username"),
        ({"username": "admin"}, "already exists"),
    ],
)
def test_refusals_are_shown_and_create_nothing(team, settings, change, message):
    settings.BERTH_SELF_REGISTRATION = True
    before = User.objects.count()
    r = Client().post("/register/", {**FORM, **change})
    assert r.status_code == 200
    assert message in r.content.decode()
    assert User.objects.count() == before


def test_a_signed_in_user_is_sent_home(team, settings):
    settings.BERTH_SELF_REGISTRATION = True
    client = Client()
    client.force_login(User.objects.get(username="dev"))
    r = client.post("/register/", FORM)
    assert r.status_code == 302 and r["Location"] == "/"
    assert not User.objects.filter(username="newcomer").exists()
