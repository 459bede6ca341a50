"""Identity providers and user groups in the admin: system administrators
only, saved by the services, the secret write-only."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import IdentityProvider, User, UserGroup
from accounts.services import providers
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDERS = "/admin/accounts/identityprovider/"
GROUPS = "/admin/accounts/usergroup/"
CONFIG = {"url": "ldap://127.0.0.1:1", "base_dn": "dc=example,dc=org", "timeout": 1}


def as_user(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def form(**overrides: object) -> dict[str, object]:
    return {
        "kind": "ldap",
        "name": "corp",
        "enabled": "on",
        "order": "1",
        "allow_create_users": "on",
        "config": json.dumps(CONFIG),
        "secret": "bind-Secret-1",
        **overrides,
    }


def test_a_sysadmin_adds_a_provider_and_never_sees_its_secret(team):
    admin = as_user("admin")
    r = admin.post(f"{PROVIDERS}add/", form())
    assert r.status_code == 302, r.content.decode()[-2000:]
    provider = IdentityProvider.objects.get()
    assert providers.secret_of(provider) == "bind-Secret-1"
    page = admin.get(f"{PROVIDERS}{provider.pk}/change/").content.decode()
    assert "bind-Secret-1" not in page and provider.secret_sealed not in page
    assert 'name="secret"' in page
    # Saving without a secret keeps it; "clear" removes it.
    r = admin.post(f"{PROVIDERS}{provider.pk}/change/", form(secret="", enabled=""))
    assert r.status_code == 302
    provider.refresh_from_db()
    assert not provider.enabled and providers.secret_of(provider) == "bind-Secret-1"
    r = admin.post(f"{PROVIDERS}{provider.pk}/change/", form(secret="", clear_secret="on"))
    assert r.status_code == 302
    provider.refresh_from_db()
    assert provider.secret_sealed == ""
    assert AuditEvent.objects.filter(resource_type="identity_provider").count() == 3


def test_bad_settings_are_a_form_error(team):
    r = as_user("admin").post(f"{PROVIDERS}add/", form(config=json.dumps({"url": "http://x"})))
    assert r.status_code == 200
    assert "url must start with ldap:// or ldaps://" in r.content.decode()
    assert not IdentityProvider.objects.exists()


def test_ping_action_says_what_failed(team):
    admin = as_user("admin")
    admin.post(f"{PROVIDERS}add/", form())
    provider = IdentityProvider.objects.get()
    r = admin.post(
        PROVIDERS,
        {"action": "ping", "_selected_action": [provider.pk]},
        follow=True,
    )
    # (The admin capitalises its messages.)
    assert '<li class="error">Corp: cannot reach the directory' in r.content.decode()


def test_only_sysadmins(team):
    padmin = as_user("padmin")
    assert padmin.get(PROVIDERS).status_code in (302, 403)
    assert padmin.post(f"{PROVIDERS}add/", form()).status_code in (302, 403)
    assert padmin.get(GROUPS).status_code in (302, 403)
    assert not IdentityProvider.objects.exists()


def test_user_groups(team):
    admin = as_user("admin")
    r = admin.post(
        f"{GROUPS}add/",
        {"name": "leads", "type": "1", "ldap_group_dn": "CN=Leads, DC=example,DC=org"},
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    group = UserGroup.objects.get()
    assert group.ldap_group_dn == "cn=leads,dc=example,dc=org"
    r = admin.post(f"{GROUPS}{group.pk}/change/", {"name": "team-leads"})
    assert r.status_code == 302
    group.refresh_from_db()
    assert group.name == "team-leads"
    assert admin.get(GROUPS).status_code == 200
    r = admin.post(f"{GROUPS}{group.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not UserGroup.objects.exists()
