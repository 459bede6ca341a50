"""The admin's quota and retention pages: usage bars per project, limits
changed through the quota service, retention runs started from the policy list
and their results (what a dry run would delete) shown per repository."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from registry import tasks
from registry.models import ProjectQuota, RetentionExecution, Tag
from registry.services import retention
from tests.conftest import ADMIN
from tests.registry.helpers import InProcess
from tests.roles import PASSWORD, api

pytestmark = pytest.mark.django_db(transaction=True)


def browser(username: str, password: str = PASSWORD) -> Client:
    client = Client()
    r = client.post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )
    assert r.status_code == 302, r.content[:500]
    return client


def test_quota_page_shows_usage_bars_and_a_sysadmin_changes_limits(
    team, v2, django_assert_max_num_queries
):
    InProcess(v2).push_image("team/app", "v1", layers=[b"x" * 4000])
    ProjectQuota.objects.create(project=team, storage_limit=2**20)
    client = browser(*ADMIN)
    with django_assert_max_num_queries(10):
        page = client.get("/admin/registry/projectstorage/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<progress" in text and "1.0 MiB" in text and "unlimited" in text
    url = f"/admin/registry/projectstorage/{team.pk}/change/"
    low = client.post(url, {"storage_limit": 10})
    assert low.status_code == 200
    assert "below the project" in low.content.decode()
    assert ProjectQuota.objects.get(project=team).storage_limit == 2**20
    ok = client.post(url, {"storage_limit": 2**30})
    assert ok.status_code == 302
    assert ProjectQuota.objects.get(project=team).storage_limit == 2**30


def test_project_admins_see_their_quota_but_do_not_change_it(team, v2):
    client = browser("padmin")
    page = client.get("/admin/registry/projectstorage/")
    assert page.status_code == 200
    assert "team" in page.content.decode() and "pub" not in page.content.decode()
    url = f"/admin/registry/projectstorage/{team.pk}/change/"
    assert client.post(url, {"storage_limit": 5}).status_code == 403
    assert not ProjectQuota.objects.exists()


def test_a_dry_run_from_the_admin_shows_what_would_go(team, v2, monkeypatch):
    monkeypatch.setattr(
        retention, "_dispatch", lambda eid: tasks.run_retention.apply(args=[eid]).get()
    )
    reg = InProcess(v2)
    for i in range(3):
        reg.push_image("team/app", f"v{i}", config=b'{"n":%d}' % i)
    body = {
        "algorithm": "or",
        "rules": [
            {
                "action": "retain",
                "template": "latestPushedK",
                "params": {"latestPushedK": 1},
                "tag_selectors": [
                    {"kind": "regex", "decoration": "matches", "pattern": "^v2$", "extras": ""}
                ],
                "scope_selectors": {"repository": [{"kind": "doublestar", "pattern": "**"}]},
            }
        ],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
        "scope": {"level": "project", "ref": team.pk},
    }
    r = api("padmin").post(
        "/api/v2.0/retentions", json.dumps(body), content_type="application/json"
    )
    assert r.status_code == 201, r.content
    pid = int(r["Location"].rsplit("/", 1)[1])
    client = browser("padmin")
    listed = client.get("/admin/registry/retentionpolicy/")
    assert listed.status_code == 200 and "team" in listed.content.decode()
    detail = client.get(f"/admin/registry/retentionpolicy/{pid}/change/")
    assert "latestPushedK" in detail.content.decode()
    started = client.post(
        "/admin/registry/retentionpolicy/",
        {"action": "dry_run", "_selected_action": [str(pid)]},
    )
    assert started.status_code == 302
    execution = RetentionExecution.objects.get()
    assert (execution.status, execution.dry_run) == ("Success", True)
    page = client.get(f"/admin/registry/retentionexecution/{execution.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "team/app" in text and "v0" in text and "v1" in text
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["v0", "v1", "v2"]
    assert browser("guest").get("/admin/registry/retentionexecution/").status_code == 403
