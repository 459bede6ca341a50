"""Replication's admin pages: the endpoint secret is write-only, policies
start executions, executions show their tasks and logs and stop; other users
see none of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from kit import sealed
from replication.models import Endpoint, Execution, Policy, Status, Task
from replication.services import executions

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sysadmin(team: Any) -> Client:
    client = Client()
    client.force_login(User.objects.get(pk=1))
    return client


def add_endpoint(client: Client, **extra: str) -> Any:
    data = {
        "name": "dist",
        "url": "http://127.0.0.1:9",
        "type": "docker-registry",
        "credential_type": "basic",
        "access_key": "repl",
        "access_secret": "hunter2-secret",
        "ca_pem": "",
        **extra,
    }
    return client.post("/admin/replication/endpoint/add/", data)


def test_the_endpoint_secret_is_write_only(sysadmin: Client) -> None:
    r = add_endpoint(sysadmin)
    assert r.status_code == 302, r.content.decode()[-2000:]
    endpoint = Endpoint.objects.get()
    assert sealed.unseal(endpoint.access_secret_sealed) == "hunter2-secret"
    page = sysadmin.get(f"/admin/replication/endpoint/{endpoint.pk}/change/").content.decode()
    assert "hunter2-secret" not in page
    assert endpoint.access_secret_sealed not in page
    # Saved again with the secret left empty: it stays.
    r = sysadmin.post(
        f"/admin/replication/endpoint/{endpoint.pk}/change/",
        {
            "name": "dist",
            "url": "http://127.0.0.1:9",
            "type": "docker-registry",
            "credential_type": "basic",
            "access_key": "repl2",
            "access_secret": "",
            "ca_pem": "",
        },
    )
    assert r.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.access_key, sealed.unseal(endpoint.access_secret_sealed)) == (
        "repl2",
        "hunter2-secret",
    )


def test_a_bad_endpoint_is_a_form_error(sysadmin: Client) -> None:
    r = add_endpoint(sysadmin, url="http://user:pw@registry.example")
    assert r.status_code == 200
    assert "put credentials in access_key/access_secret" in r.content.decode()
    assert not Endpoint.objects.exists()


def test_policies_start_and_executions_stop_with_tasks_and_logs(
    sysadmin: Client, settings: Any
) -> None:
    settings.BERTH_REPLICATION_RETRIES = 0
    add_endpoint(sysadmin)
    endpoint = Endpoint.objects.get()
    r = sysadmin.post(
        "/admin/replication/policy/add/",
        {
            "name": "push",
            "dest_endpoint": endpoint.pk,
            "dest_namespace": "",
            "dest_namespace_replace_count": "-1",
            "filters": '[{"type": "tag", "value": "v*"}]',
            "trigger": "manual",
            "cron": "",
            "override": "on",
            "speed_kb": "-1",
            "enabled": "on",
        },
    )
    assert r.status_code == 302, r.content.decode()[-3000:]
    policy = Policy.objects.get()
    assert policy.filters == [
        {"type": "tag", "value": "v*", "decoration": "matches", "kind": "doublestar"}
    ]
    r = sysadmin.post(
        "/admin/replication/policy/",
        {"action": "start", "_selected_action": [policy.pk]},
        follow=True,
    )
    execution = Execution.objects.get()
    assert f"execution {execution.pk} started" in r.content.decode()
    Task.objects.create(
        execution=execution, src_repository="app/x", dst_repository="app/x", references=["v1"],
        log="2026-01-01T00:00:00Z copy app/x ['v1'] → app/x\n",
    )  # fmt: skip
    page = sysadmin.get(f"/admin/replication/execution/{execution.pk}/change/").content.decode()
    assert "app/x" in page
    task = Task.objects.get()
    log_page = sysadmin.get(f"/admin/replication/task/{task.pk}/change/").content.decode()
    assert "copy app/x" in log_page

    r = sysadmin.post(
        "/admin/replication/execution/",
        {"action": "stop", "_selected_action": [execution.pk]},
        follow=True,
    )
    assert "stop requested" in r.content.decode()
    execution.refresh_from_db()
    assert (execution.stop_requested, execution.status) == (True, Status.STOPPED)
    assert executions.run(execution.pk) is None


def test_other_users_see_no_replication_pages(team: Any) -> None:
    client = Client()
    client.force_login(User.objects.get(username="padmin"))
    for page in ("endpoint", "policy", "execution", "task"):
        assert client.get(f"/admin/replication/{page}/").status_code == 403


def test_the_execution_list_costs_the_same_with_more_rows(
    sysadmin: Client, django_assert_max_num_queries: Any
) -> None:
    endpoint = Endpoint.objects.create(name="d", url="http://127.0.0.1:9", type="docker-registry")
    policies = [Policy.objects.create(name=f"p{i}", dest_endpoint=endpoint) for i in range(3)]
    Execution.objects.bulk_create(Execution(policy=p) for p in policies for _ in range(10))
    sysadmin.get("/admin/replication/execution/")  # warm the session and the site
    with django_assert_max_num_queries(8):
        r = sysadmin.get("/admin/replication/execution/")
    assert r.status_code == 200
    assert r.content.decode().count("/admin/replication/execution/") >= 30
