"""Identity providers as a service: sysadmin only, audited, settings checked,
the secret sealed at rest and never given back."""

from __future__ import annotations

import pytest

from accounts.errors import Conflict, Denied, Invalid
from accounts.models import IdentityProvider, User
from accounts.services import providers
from accounts.services.auth import actor_for_user
from audit.models import AuditEvent
from kit import sealed

pytestmark = pytest.mark.django_db(transaction=True)

LDAP = {"url": "ldap://127.0.0.1:1", "base_dn": "dc=example,dc=org"}


@pytest.fixture
def admin(bootstrapped):
    return actor_for_user(User.objects.get(pk=1))


def test_create_seals_the_secret_and_audits(admin):
    p = providers.provider_create(
        actor=admin, kind="ldap", name="corp", config=LDAP, secret="bind-pw-1"
    )
    row = IdentityProvider.objects.get(pk=p.pk)
    assert "bind-pw-1" not in row.secret_sealed
    assert sealed.unseal(row.secret_sealed) == "bind-pw-1"
    assert providers.secret_of(row) == "bind-pw-1"
    assert row.config["uid"] == "uid" and row.config["timeout"] == 5
    events = AuditEvent.objects.filter(resource_type="identity_provider")
    assert [(e.operation, e.resource) for e in events] == [("create", "corp")]
    assert "bind-pw-1" not in str(list(events.values()))


def test_update_keeps_clears_and_replaces_the_secret(admin):
    p = providers.provider_create(actor=admin, kind="ldap", name="corp", config=LDAP, secret="a")
    providers.provider_update(actor=admin, provider_id=p.pk, changes={"secret": None})
    assert providers.secret_of(IdentityProvider.objects.get(pk=p.pk)) == "a"
    providers.provider_update(actor=admin, provider_id=p.pk, changes={"secret": "b"})
    assert providers.secret_of(IdentityProvider.objects.get(pk=p.pk)) == "b"
    providers.provider_update(actor=admin, provider_id=p.pk, changes={"secret": ""})
    assert IdentityProvider.objects.get(pk=p.pk).secret_sealed == ""
    # config is merged over what is stored
    providers.provider_update(actor=admin, provider_id=p.pk, changes={"config": {"uid": "cn"}})
    config = IdentityProvider.objects.get(pk=p.pk).config
    assert (config["uid"], config["base_dn"]) == ("cn", "dc=example,dc=org")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"url": "http://x", "base_dn": "dc=x"}, "ldap://"),
        ({**LDAP, "scope": 7}, "scope"),
        ({**LDAP, "timeout": "5"}, "timeout must be an integer"),
        ({**LDAP, "nope": 1}, "unknown ldap setting nope"),
        ({**LDAP, "uid": "uid)(x=*"}, "uid must be an attribute name"),
        ("ldap://x", "config must be an object"),
    ],
)
def test_bad_settings_are_refused(admin, config, message):
    with pytest.raises(Invalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        providers.provider_create(actor=admin, kind="ldap", name="corp", config=config)
    assert not IdentityProvider.objects.exists()


def test_names_are_unique_and_kinds_known(admin):
    providers.provider_create(actor=admin, kind="ldap", name="corp", config=LDAP)
    with pytest.raises(Conflict):
        providers.provider_create(actor=admin, kind="ldap", name="corp", config=LDAP)
    with pytest.raises(Invalid):
        providers.provider_create(actor=admin, kind="saml", name="x")
    with pytest.raises(Invalid):
        providers.provider_create(actor=admin, kind="ldap", name="../x", config=LDAP)


def test_order(admin):
    a = providers.provider_create(actor=admin, kind="ldap", name="a", config=LDAP)
    b = providers.provider_create(
        actor=admin,
        kind="oidc",
        name="b",
        config={"issuer": "http://127.0.0.1:9", "client_id": "berth"},
    )
    assert [p.name for p in IdentityProvider.objects.all()] == ["a", "b"]
    providers.provider_order(actor=admin, provider_ids=[b.pk, a.pk])
    assert [p.name for p in IdentityProvider.objects.all()] == ["b", "a"]
    with pytest.raises(Invalid):
        providers.provider_order(actor=admin, provider_ids=[b.pk])


def test_only_sysadmins(team):
    dev = actor_for_user(User.objects.get(username="padmin"))
    with pytest.raises(Denied):
        providers.provider_create(actor=dev, kind="ldap", name="corp", config=LDAP)
    with pytest.raises(Denied):
        providers.provider_list(actor=dev)
    assert not IdentityProvider.objects.exists()


@pytest.mark.parametrize(
    "dn, normalized",
    [
        ("CN=Leads, DC=Example,DC=org", "cn=leads,dc=example,dc=org"),
        (r"cn=Smith\, John,ou=People", r"cn=smith\, john,ou=people"),
        ("cn=a+uid=B,dc=x", "cn=a+uid=b,dc=x"),
    ],
)
def test_dns_compare_as_directories_compare_them(dn, normalized):
    from accounts.services.groups import normalize_dn

    assert normalize_dn(dn) == normalized
