"""The suite runs on SQLite and on PostgreSQL (make test). Here: what SQLite lets
pass and PostgreSQL refuses (explicit ids and sequences, NUL characters, strings
longer than their column: on either, a client's error or no match, never a 5xx),
replicas sharing one PostgreSQL database, and migrations that old replicas survive."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import requests

from accounts.models import User
from audit.models import AuditEvent
from tests.conftest import ADMIN, BerthServer, basic
from tests.registry.helpers import InProcess, image
from tests.roles import api

NUL = "\x00"
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres:", "postgresql:"))


@pytest.mark.django_db(transaction=True)
def test_users_after_the_bootstrapped_admin_get_new_ids(bootstrapped):
    # bootstrap() writes the admin with id 1 explicitly; PostgreSQL's sequence
    # must have moved past it.
    user = User.objects.create(username="second", email="second@example.com")
    assert user.pk > 1
    assert User.objects.create(username="third", email="third@example.com").pk > user.pk


@pytest.mark.django_db(transaction=True)
def test_nul_in_searches_and_credentials(bootstrapped):
    admin = api("admin")
    for path in (
        f"/api/v2.0/users/search?username=a{NUL}",
        f"/api/v2.0/projects?name=a{NUL}",
        f"/api/v2.0/projects?q=name%3D~a{NUL}",
        f"/api/v2.0/audit-logs?q=username%3Da{NUL}",
        f"/api/v2.0/search?q=a{NUL}",
    ):
        r = admin.get(path.replace(NUL, "%00"))
        assert r.status_code in (200, 400), (path, r.status_code)
    client = api(f"ad{NUL}min", ADMIN[1])
    assert client.get("/api/v2.0/users/current").status_code == 401
    assert client.get("/service/token?service=harbor-registry").status_code == 401
    r = api().post("/c/login", {"principal": f"ad{NUL}min", "password": ADMIN[1]})
    assert r.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_values_longer_than_their_columns(bootstrapped):
    r = api("admin").post(
        "/api/v2.0/users",
        data=json.dumps(
            {
                "username": "longname",
                "password": "Harbor12345",
                "email": "long@example.com",
                "realname": "r" * 1000,
            }
        ),
        content_type="application/json",
    )
    # Refused alike on both databases (SQLite would store it, PostgreSQL not).
    assert r.status_code == 400, r.content
    assert b"realname" in r.content
    assert not User.objects.filter(username="longname").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "field, value",
    [
        ("username", f"nul{NUL}user"),
        ("username", "tab\tuser"),
        ("realname", f"Real{NUL}Name"),
        ("comment", "bell\x07"),
        ("email", f"a{NUL}@example.com"),
    ],
)
def test_control_characters_in_user_fields_are_refused(bootstrapped, field, value):
    fields = {"username": "ctrluser", "password": "Harbor12345", "email": "c@example.com"}
    fields[field] = value
    r = api("admin").post(
        "/api/v2.0/users", data=json.dumps(fields), content_type="application/json"
    )
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert User.objects.count() == 1  # the admin only


@pytest.mark.django_db(transaction=True)
def test_unstorable_login_names_are_audited_and_hold_nothing_back(bootstrapped):
    from audit.services import flush

    name = "x" * 1000 + NUL
    r = api().get("/service/token?service=harbor-registry", HTTP_AUTHORIZATION=basic(name, "pw"))
    assert r.status_code == 401
    assert api("admin").get("/api/v2.0/users/current").status_code == 200
    assert flush() >= 1
    event = AuditEvent.objects.filter(operation="login", result="failure").get()
    assert event.username == "x" * 255
    assert event.resource == "x" * 512


def test_manifests_with_nul_or_overlong_types_are_invalid(v2):
    reg = InProcess(v2)
    reg.push_image("pg/app", "v1")
    for extra in (
        {"annotations": {"note": f"a{NUL}b"}},
        {"annotations": {f"k{NUL}": "v"}},
        {"artifactType": f"application/x{NUL}y"},
        {"artifactType": "application/" + "x" * 300},
    ):
        body, blobs = image(**extra)
        for data in blobs.values():
            reg.put_blob("pg/app", data)
        r = reg.put_manifest("pg/app", "v2", body)
        assert r.status_code == 400, (extra, r.content)
        assert json.loads(r.content)["errors"][0]["code"] == "MANIFEST_INVALID"


def test_nul_in_list_parameters_matches_nothing(v2):
    reg = InProcess(v2)
    digest, _ = reg.push_image("pg/list", "v1")
    r = v2.get("/v2/pg/list/tags/list?last=v%00")
    assert r.status_code == 200
    assert json.loads(r.content)["tags"] == ["v1"]
    r = v2.get("/v2/_catalog?last=pg%00")
    assert r.status_code == 200
    assert "pg/list" in json.loads(r.content)["repositories"]
    r = v2.get(f"/v2/pg/list/referrers/{digest}?artifactType=a%00")
    assert r.status_code == 200
    assert json.loads(r.content)["manifests"] == []


@pytest.mark.skipif(not ON_POSTGRES, reason="replicas share a database on PostgreSQL")
@pytest.mark.live
def test_replicas_started_together_on_one_database(tmp_path):
    """Each web replica migrates and bootstraps at start: started at once on an
    empty database they take turns (an advisory lock), and all come up."""
    replicas = [BerthServer(tmp_path / f"replica{i}") for i in range(3)]
    for replica in replicas[1:]:
        replica.database_url = replicas[0].database_url
    failures: list[BaseException] = []

    def start(server: BerthServer) -> None:
        try:
            server.start(timeout=120)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(r,)) for r in replicas]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        replicas[0].create_projects(["shared"])
        for replica in replicas:
            r = requests.get(f"{replica.url}/api/v2.0/projects?name=shared", auth=ADMIN)
            assert [p["name"] for p in r.json()] == ["shared"]
            r = requests.get(f"{replica.url}/api/v2.0/users?page_size=100", auth=ADMIN)
            assert [u["username"] for u in r.json()] == ["admin"]
    finally:
        for replica in replicas:
            replica.stop()


# Migrations that web replicas still running the previous release survive while
# the new one migrates (docs/scale-out.md, "Migrations"). An exception needs a reason.
ROLLING_EXCEPTIONS = {
    ("registry", "0002_repository_last_pulled_at_repository_pull_count"): (
        "pull_count came without a database default; 0003 adds it"
    ),
}


def test_migrations_keep_the_previous_release_working():
    from django.apps import apps
    from django.db import migrations
    from django.db.migrations.loader import MigrationLoader
    from django.db.models import NOT_PROVIDED

    from tests.conftest import REPO_ROOT

    # Berth's own apps: top-level packages of the repository (not whatever lives
    # in a virtualenv inside it).
    ours = {c.label for c in apps.get_app_configs() if Path(c.path).parent == REPO_ROOT}
    breaking = (
        migrations.RemoveField,
        migrations.RenameField,
        migrations.DeleteModel,
        migrations.RenameModel,
        migrations.AlterModelTable,
    )
    problems = []
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in ours or migration.initial or (app, name) in ROLLING_EXCEPTIONS:
            continue
        for op in migration.operations:
            where = f"{app}.{name}: {op.describe()}"
            if isinstance(op, migrations.AddField):
                field = op.field
                if not (field.null or field.many_to_many or field.db_default is not NOT_PROVIDED):
                    problems.append(f"{where}: NOT NULL without db_default")
            elif isinstance(op, breaking):
                problems.append(f"{where}: the previous release still reads it")
    assert not problems, problems
