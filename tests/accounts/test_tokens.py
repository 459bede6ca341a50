"""The token service and /v2 authentication: cases B14-B21."""

from __future__ import annotations

import base64
import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.hashers import MD5PasswordHasher, get_hashers, get_hashers_by_algorithm
from django.test import Client

from accounts.models import Member, Robot, User
from accounts.services import tokens
from accounts.services.bootstrap import bootstrap
from tests.conftest import ADMIN, RegistryClient, basic
from tests.roles import PASSWORD, api, granted, token

pytestmark = pytest.mark.django_db(transaction=True)


def v2(auth: str | None = None) -> RegistryClient:
    return RegistryClient(HTTP_AUTHORIZATION=auth) if auth else RegistryClient()


def bearer(value: str) -> str:
    return f"Bearer {value}"


# Challenges and the happy path ---------------------------------------------------


def test_v2_challenges_every_request_without_credentials(team):
    for path in ("/v2/", "/v2/pub/app/manifests/v1", "/v2/team/app/tags/list"):
        r = v2().get(path)
        assert r.status_code == 401
        header = r["WWW-Authenticate"]
        assert header.startswith('Bearer realm="http://testserver/service/token"')
        assert 'service="harbor-registry"' in header
    assert (
        'scope="repository:team/app:pull"' in v2().get("/v2/team/app/tags/list")["WWW-Authenticate"]
    )


def test_token_grants_role_permissions(team):
    scope = "repository:team/app:pull,push,delete"
    assert granted("admin", scope) == ["delete", "pull", "push"]
    assert granted("padmin", scope) == ["delete", "pull", "push"]
    assert granted("maint", scope) == ["delete", "pull", "push"]
    assert granted("dev", scope) == ["pull", "push"]
    assert granted("guest", scope) == ["pull"]
    assert granted("lguest", scope) == ["pull"]
    assert granted("outsider", scope) == []
    assert granted(None, scope) == []
    assert granted(None, "repository:pub/app:pull,push") == ["pull"]
    assert granted("dev", "repository:team/app:*") == ["pull", "push"]
    assert granted("admin", "repository:nosuchproject/app:pull") == []


def test_token_response_shape(team):
    body = token("dev", "repository:team/app:pull")
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 1800
    assert body["issued_at"].endswith("+00:00")
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "RS256"


# B14 ----------------------------------------------------------------------------


def _claims(**extra):
    now = int(time.time())
    return {
        "iss": tokens.ISSUER,
        "sub": "admin",
        "aud": tokens.SERVICE,
        "exp": now + 600,
        "nbf": now - 5,
        "iat": now,
        "kind": "user",
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}],
        **extra,
    }


def _forge_with_own_key(embed_jwk: bool) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"kid": tokens._keys.load().kid}
    if embed_jwk:
        headers["jwk"] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return jwt.encode(_claims(), key, algorithm="RS256", headers=headers)


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_b14_forged_tokens_are_refused(team):
    keys = tokens._keys.load()
    public_pem = keys.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    hs_header = _b64({"alg": "HS256", "typ": "JWT", "kid": keys.kid})
    hs_body = _b64(_claims())
    signature = hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest()
    hs256_with_public_key = (
        f"{hs_header}.{hs_body}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    )
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.kid})}.{_b64(_claims())}."
    forged = [
        _forge_with_own_key(embed_jwk=True),
        _forge_with_own_key(embed_jwk=False),
        hs256_with_public_key,
        alg_none,
        "not-a-jwt",
    ]
    for value in forged:
        r = v2(bearer(value)).get("/v2/team/app/tags/list")
        assert r.status_code == 401, value[:40]
        assert "WWW-Authenticate" in r


# B15 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": int(time.time()) - 120},
        {"nbf": int(time.time()) + 600, "iat": int(time.time()) + 600},
        {"aud": "some-other-service"},
        {"iss": "someone-else"},
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer"],
)
def test_b15_bad_claims_are_refused(team, changes):
    keys = tokens._keys.load()
    value = jwt.encode(
        _claims(**changes), keys.private, algorithm="RS256", headers={"kid": keys.kid}
    )
    assert v2(bearer(value)).get("/v2/team/app/tags/list").status_code == 401


def test_b15_leeway_is_at_most_a_minute(team):
    keys = tokens._keys.load()
    just_expired = jwt.encode(
        _claims(exp=int(time.time()) - 30),
        keys.private,
        algorithm="RS256",
        headers={"kid": keys.kid},
    )
    assert v2(bearer(just_expired)).get("/v2/team/app/tags/list").status_code == 404
    assert (
        v2(bearer(just_expired)).get("/v2/team/app/tags/list").json()["errors"][0]["code"]
        == "NAME_UNKNOWN"
    )


def test_scopes_naming_one_repository_look_it_up_once(team):
    """A client's own ``pull,push`` and the challenge's ``push`` for the same
    repository: each scope gets its own entry, the project and the caller's
    membership are read once (not once per scope)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token("dev", "repository:team/app:pull")  # credentials checked and cached
    scopes = ("repository:team/app:pull,push", "repository:team/app:push", "repository:pub/x:pull")
    with CaptureQueriesContext(connection) as queries:
        issued = token("dev", *scopes)
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    assert claims["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "team/app", "actions": ["push"]},
        {"type": "repository", "name": "pub/x", "actions": ["pull"]},
    ]
    projects = [q["sql"] for q in queries.captured_queries if '"registry_project"' in q["sql"]]
    assert len(projects) == 2, projects  # team and pub, once each


def _scopes(count: int) -> str:
    return " ".join(f"repository:team/app{i}:pull" for i in range(count))


def test_a_token_request_carries_at_most_100_scopes(team):
    """20,000 scopes in one request took 13.7 s (a lookup per repository) and
    made a 2.4 MB token: more than 100 are refused, before any lookup, in the
    token service's error shape."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    issued = token("dev", _scopes(100))
    assert len(jwt.decode(issued["token"], options={"verify_signature": False})["access"]) == 100
    with CaptureQueriesContext(connection) as queries:
        r = api("dev").get(
            "/service/token", {"service": "harbor-registry", "scope": _scopes(20_000)}
        )
    assert r.status_code == 400
    assert r.json() == {
        "errors": [
            {"code": "BAD_REQUEST", "message": "at most 100 scopes per token request, got 20000"}
        ]
    }
    assert not [q for q in queries.captured_queries if '"registry_project"' in q["sql"]]
    r = api("dev").get(
        "/service/token", {"scope": ["repository:team/app:pull"] * 60 + [_scopes(41)]}
    )
    assert r.status_code == 400


def test_a_scope_is_at_most_512_characters(team):
    r = api("dev").get("/service/token", {"scope": "repository:team/" + "a" * 492 + ":pull"})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "code": "BAD_REQUEST",
        "message": "a scope is at most 512 characters",
    }


def test_the_oauth2_form_has_the_same_scope_cap(team):
    r = api().post(
        "/service/token",
        {
            "grant_type": "password",
            "username": "dev",
            "password": PASSWORD,
            "service": "harbor-registry",
            "scope": _scopes(101),
        },
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"


# B16 ----------------------------------------------------------------------------


def test_b16_scope_escalation_gets_only_what_the_role_allows(team):
    assert granted("guest", "repository:team/app:pull,push,delete,*") == ["pull"]
    pull_only = token("guest", "repository:team/app:push,pull")["token"]
    r = v2(bearer(pull_only)).post("/v2/team/app/blobs/uploads/")
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"
    r = v2(basic("guest", PASSWORD)).post("/v2/team/app/blobs/uploads/")
    assert r.status_code == 403


# B17 ----------------------------------------------------------------------------


def test_b17_disabled_user_gets_no_new_token(team):
    assert granted("dev", "repository:team/app:pull") == ["pull"]
    User.objects.filter(username="dev").update(is_active=False)
    r = api("dev").get("/service/token?service=harbor-registry&scope=repository:team/app:pull")
    assert r.status_code == 401
    assert v2(basic("dev", PASSWORD)).get("/v2/").status_code == 401


def test_b17_changed_password_invalidates_cached_credentials(team):
    assert v2(basic("dev", PASSWORD)).get("/v2/").status_code == 200
    user = User.objects.get(username="dev")
    user.set_password("Changed123")
    user.save()
    assert v2(basic("dev", PASSWORD)).get("/v2/").status_code == 401
    assert v2(basic("dev", "Changed123")).get("/v2/").status_code == 200


def test_b17_removed_membership_grants_nothing_new(team):
    assert granted("dev", "repository:team/app:pull,push") == ["pull", "push"]
    Member.objects.filter(user__username="dev").delete()
    assert granted("dev", "repository:team/app:pull,push") == []


def test_b17_deleted_robot_is_refused(team):
    r = api("padmin").post(
        "/api/v2.0/robots",
        data={
            "name": "ci",
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "team",
                    "access": [{"resource": "repository", "action": "pull"}],
                }
            ],
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    name, secret = r.json()["name"], r.json()["secret"]
    assert name == "robot$team+ci"
    assert granted_as(name, secret, "repository:team/app:pull,push") == ["pull"]
    Robot.objects.filter(name=name).delete()
    r = api(name, secret).get("/service/token?service=harbor-registry")
    assert r.status_code == 401


def granted_as(user: str, password: str, scope: str) -> list[str]:
    body = api(user, password).get(f"/service/token?service=harbor-registry&scope={scope}").json()
    return jwt.decode(body["token"], options={"verify_signature": False})["access"][0]["actions"]


def test_b17_refresh_token_dies_with_password_change(team):
    r = Client().post(
        "/service/token",
        data={
            "grant_type": "password",
            "username": "dev",
            "password": PASSWORD,
            "service": "harbor-registry",
            "scope": "repository:team/app:pull",
            "access_type": "offline",
            "client_id": "docker",
        },
    )
    assert r.status_code == 200, r.content
    refresh = r.json()["refresh_token"]
    again = Client().post(
        "/service/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "harbor-registry",
            "scope": "repository:team/app:pull",
        },
    )
    assert again.status_code == 200
    assert again.json()["access_token"]
    user = User.objects.get(username="dev")
    user.set_password("Changed123")
    user.save()
    revoked = Client().post(
        "/service/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "harbor-registry",
            "scope": "repository:team/app:pull",
        },
    )
    assert revoked.status_code == 401


# B18 ----------------------------------------------------------------------------


class CountingHasher(MD5PasswordHasher):
    """The fast test hasher, counting how many hashes are computed."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings):
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0
    yield CountingHasher
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


def test_b18_unknown_user_costs_a_hash_like_a_wrong_password(team, counting_hasher):
    api("dev", "Wrong1234").get("/service/token?service=harbor-registry")
    wrong_password = counting_hasher.calls
    counting_hasher.calls = 0
    api("nobody", "Wrong1234").get("/service/token?service=harbor-registry")
    assert counting_hasher.calls == wrong_password >= 1


# B19 ----------------------------------------------------------------------------


def test_b19_guessing_is_throttled_without_locking_out_the_owner(team, settings):
    settings.BERTH_LOGIN_FAILURES_ALLOWED = 3
    attacker = Client(HTTP_AUTHORIZATION=basic("admin", "Guess1234"), REMOTE_ADDR="10.6.6.6")
    statuses = [
        attacker.get("/service/token?service=harbor-registry").status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    r = attacker.get("/service/token?service=harbor-registry")
    assert int(r["Retry-After"]) > 0
    owner = Client(HTTP_AUTHORIZATION=basic(*ADMIN), REMOTE_ADDR="10.1.1.1")
    assert owner.get("/service/token?service=harbor-registry").status_code == 200


# B20 ----------------------------------------------------------------------------


def test_b20_no_default_password(transactional_db, fast_passwords, monkeypatch, settings, tmp_path):
    monkeypatch.delenv("BERTH_ADMIN_PASSWORD", raising=False)
    settings.DATA_DIR = tmp_path
    tokens.reset()
    bootstrap()
    path = tmp_path / "initial-admin-password"
    generated = path.read_text().strip()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    admin = User.objects.get(pk=1)
    assert admin.username == "admin" and admin.is_superuser
    assert admin.check_password(generated)
    for default in ("Harbor12345", "admin", "password", ""):
        assert not admin.check_password(default)
    assert len(generated) >= 16


def test_b20_weak_configured_password_is_refused(transactional_db, fast_passwords, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "admin")
    with pytest.raises(ImproperlyConfigured):
        bootstrap()
    assert not User.objects.exists()


# B21 ----------------------------------------------------------------------------


def test_b21_unknown_user_and_wrong_password_answer_alike(team):
    a = api("dev", "Wrong1234").get("/service/token?service=harbor-registry")
    b = api("nobody", "Wrong1234").get("/service/token?service=harbor-registry")
    assert (a.status_code, a.content) == (b.status_code, b.content)


def test_b21_private_and_missing_repositories_answer_alike(team):
    for who in ("outsider",):
        t = token(who, "repository:team/app:pull", "repository:ghost/app:pull")["token"]
        private = v2(bearer(t)).get("/v2/team/app/manifests/v1")
        missing = v2(bearer(t)).get("/v2/ghost/app/manifests/v1")
        assert private.status_code == missing.status_code == 403
        assert private.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"]
    anon = token(None, "repository:team/app:pull")["token"]
    assert v2(bearer(anon)).get("/v2/team/app/manifests/v1").status_code == 401
    assert v2(bearer(anon)).get("/v2/ghost/app/manifests/v1").status_code == 401
