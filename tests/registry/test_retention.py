"""Tag retention as Harbor's (issue 18): policies through Harbor's API, checked
with clear 400s, runs (dry and real) as Celery tasks with their state in
Berth's tables, deletes through the user's delete path (audit, quota)."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from accounts.models import Project
from audit.models import AuditEvent
from kit import events
from registry import tasks
from registry.models import Manifest, RetentionExecution, RetentionPolicy, Tag
from registry.services import retention
from tests.registry.helpers import InProcess, artifact, sha256
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def run_now(monkeypatch):
    """Runs start on commit in this process (Celery's apply) instead of a broker."""
    monkeypatch.setattr(
        retention, "_dispatch", lambda eid: tasks.run_retention.apply(args=[eid]).get()
    )


def _rule(template="latestPushedK", params=None, tag="**", kind="doublestar", **extra):
    return {
        "disabled": False,
        "action": "retain",
        "template": template,
        "params": params if params is not None else {template: 2},
        "tag_selectors": [
            {
                "kind": kind,
                "decoration": extra.pop("decoration", "matches"),
                "pattern": tag,
                "extras": json.dumps({"untagged": extra.pop("untagged", False)}),
            },
            *extra.pop("more", []),
        ],
        "scope_selectors": {
            "repository": [
                {
                    "kind": "doublestar",
                    "decoration": "repoMatches",
                    "pattern": extra.pop("repo", "**"),
                }
            ]
        },
    }


def _policy(project, rules, cron=""):
    return {
        "algorithm": "or",
        "rules": rules,
        "trigger": {"kind": "Schedule", "settings": {"cron": cron}},
        "scope": {"level": "project", "ref": project.pk},
    }


def _post(project, rules, cron="", user="padmin"):
    return api(user).post(
        "/api/v2.0/retentions", _policy(project, rules, cron), content_type="application/json"
    )


def _create(project, rules, cron=""):
    r = _post(project, rules, cron)
    assert r.status_code == 201, r.content
    return int(r["Location"].rsplit("/", 1)[1])


def _push_versions(v2, name="team/app", n=5):
    """``n`` images tagged v0..v(n-1), pushed a day apart (v0 oldest)."""
    reg = InProcess(v2)
    digests = []
    start = timezone.now() - datetime.timedelta(days=n)
    for i in range(n):
        digest, _ = reg.push_image(name, f"v{i}", config=b'{"n":%d}' % i)
        when = start + datetime.timedelta(days=i)
        Manifest.objects.filter(digest=digest).update(created_at=when)
        Tag.objects.filter(manifest__digest=digest).update(updated_at=when)
        digests.append(digest)
    return digests


def _run(policy_id, dry_run, user="padmin"):
    r = api(user).post(
        f"/api/v2.0/retentions/{policy_id}/executions",
        {"dry_run": dry_run},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    return int(r["Location"].rsplit("/", 1)[1])


def _tags(name="team/app"):
    return sorted(Tag.objects.filter(repository__name=name).values_list("name", flat=True))


def test_metadatas_list_harbors_templates_and_selectors(team):
    r = api("guest").get("/api/v2.0/retentions/metadatas")
    assert r.status_code == 200
    body = r.json()
    names = [t["rule_template"] for t in body["templates"]]
    assert names == [
        "latestPushedK",
        "latestPulledN",
        "nDaysSinceLastPush",
        "nDaysSinceLastPull",
        "always",
        "nothing",
    ]
    assert body["templates"][0]["params"] == [{"type": "int", "unit": "COUNT", "required": True}]
    assert {s["kind"] for s in body["tag_selectors"]} == {"doublestar", "regex", "label"}
    assert body["scope_selectors"][0]["decorations"] == ["repoMatches", "repoExcludes"]
    assert api(None).get("/api/v2.0/retentions/metadatas").status_code == 401


def test_a_policy_round_trips_and_binds_to_its_project(team):
    pid = _create(team, [_rule()], cron="0 0 0 * * *")
    got = api("dev").get(f"/api/v2.0/retentions/{pid}").json()
    assert got["id"] == pid and got["algorithm"] == "or"
    assert got["scope"] == {"level": "project", "ref": team.pk}
    assert got["trigger"] == {
        "kind": "Schedule",
        "settings": {"cron": "0 0 0 * * *"},
        "references": {},
    }
    [rule] = got["rules"]
    assert rule["template"] == "latestPushedK" and rule["params"] == {"latestPushedK": 2}
    assert rule["tag_selectors"][0]["pattern"] == "**"
    assert rule["scope_selectors"]["repository"][0]["decoration"] == "repoMatches"
    project = api("guest").get(f"/api/v2.0/projects/{team.pk}").json()
    assert project["metadata"]["retention_id"] == str(pid)
    again = _post(team, [_rule()])
    assert again.status_code == 400
    assert "already has retention policy" in again.json()["errors"][0]["message"]
    # Terraform's update, then its delete: a PUT with no rules and no cron.
    put = api("padmin").put(
        f"/api/v2.0/retentions/{pid}",
        _policy(team, [_rule("always", {}), _rule(tag="^v", kind="regex")]),
        content_type="application/json",
    )
    assert put.status_code == 200, put.content
    assert len(api("dev").get(f"/api/v2.0/retentions/{pid}").json()["rules"]) == 2
    emptied = api("padmin").put(
        f"/api/v2.0/retentions/{pid}",
        {**_policy(team, []), "id": pid},
        content_type="application/json",
    )
    assert emptied.status_code == 200, emptied.content
    assert api("dev").get(f"/api/v2.0/retentions/{pid}").json()["rules"] == []
    assert api("padmin").delete(f"/api/v2.0/retentions/{pid}").status_code == 200
    assert not RetentionPolicy.objects.exists()
    assert "retention_id" not in Project.objects.get(pk=team.pk).metadata
    written = AuditEvent.objects.filter(resource_type="tag_retention").values_list(
        "operation", flat=True
    )
    assert sorted(written) == ["create", "delete", "update", "update"]


@pytest.mark.parametrize(("user", "status"), [("guest", 403), ("outsider", 404), (None, 401)])
def test_guests_and_strangers_write_no_policies(team, user, status):
    assert _post(team, [_rule()], user=user).status_code == status
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize(
    ("rules", "cron", "message"),
    [
        ([_rule()] * 16, "", "at most 15 rules"),
        ([_rule("latestFooK", {})], "", "template 'latestFooK' is unknown"),
        ([_rule(tag="(a+)+\\1", kind="regex")], "", "pattern"),
        ([_rule(tag="x" * 2000, kind="regex")], "", "pattern"),
        ([_rule()], "every day at noon", "invalid cron"),
        ([_rule()], "0 61 * * * *", "invalid cron"),
        ([_rule(params={"latestPushedK": "2"})], "", "must be an integer"),
        ([_rule(params={"latestPushedK": -1})], "", "between 0 and"),
        ([_rule(decoration="sortOf")], "", "decoration must be one of"),
        ([_rule(kind="glob")], "", "kind must be one of"),
        ([{**_rule(), "action": "delete"}], "", "action must be retain"),
        ([_rule(kind="doublestar", untagged="yes")], "", "untagged must be true or false"),
        (
            [{**_rule(), "tag_selectors": [{"pattern": "**", "extras": "[" * 1000 + "]" * 1000}]}],
            "",
            "extras is longer than",
        ),
        ([{**_rule(), "tag_selectors": [{"pattern": "**", "extras": "[" * 500}]}], "", "extras"),
        ([{**_rule(), "tag_selectors": [7]}], "", "must be a selector object"),
    ],
)
def test_bad_policies_are_clear_400s(team, rules, cron, message):
    r = _post(team, rules, cron)
    assert r.status_code == 400, r.content
    assert message in r.json()["errors"][0]["message"]
    assert not RetentionPolicy.objects.exists()


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(team, v2):
    digests = _push_versions(v2)
    pid = _create(team, [_rule()])
    eid = _run(pid, dry_run=True)
    executions = api("dev").get(f"/api/v2.0/retentions/{pid}/executions").json()
    assert [(e["id"], e["status"], e["dry_run"], e["trigger"]) for e in executions] == [
        (eid, "Success", True, "MANUAL")
    ]
    [task] = api("dev").get(f"/api/v2.0/retentions/{pid}/executions/{eid}/tasks").json()
    assert (task["repository"], task["total"], task["retained"]) == ("team/app", 5, 2)
    log = api("dev").get(f"/api/v2.0/retentions/{pid}/executions/{eid}/tasks/{task['id']}")
    assert log["Content-Type"].startswith("text/plain")
    text = log.content.decode()
    assert text.count("WOULD DELETE") == 3
    for gone in digests[:3]:
        assert gone[:19] in text
    assert _tags() == ["v0", "v1", "v2", "v3", "v4"]


def test_a_run_deletes_through_the_users_delete_path(team, v2):
    digests = _push_versions(v2)
    used = api("admin").get(f"/api/v2.0/quotas/{team.pk}").json()["used"]["storage"]
    pid = _create(team, [_rule()])
    eid = _run(pid, dry_run=False)
    assert RetentionExecution.objects.get(pk=eid).status == "Success"
    assert _tags() == ["v3", "v4"]
    assert set(Manifest.objects.values_list("digest", flat=True)) == set(digests[3:])
    events.deliver()  # the deletes' audit entries ride their durable events
    deleted = AuditEvent.objects.filter(operation="delete", resource_type="artifact")
    assert sorted(e.resource for e in deleted) == sorted(f"team/app@{d}" for d in digests[:3])
    assert {e.username for e in deleted} == {"padmin"}
    after = api("admin").get(f"/api/v2.0/quotas/{team.pk}").json()["used"]["storage"]
    assert after < used  # the manifests' bytes are released (the layers at GC)


def test_regex_selectors_untagged_handling_and_repository_scope(team, v2):
    _push_versions(v2, "team/app", n=3)
    _push_versions(v2, "team/other", n=3)
    reg = InProcess(v2)
    untagged, _ = reg.push_image("team/app", "keep-me")
    Tag.objects.filter(name="keep-me").delete()
    # Keep tags v1 or v2 (a regex), and untagged artifacts, in team/app only.
    pid = _create(
        team,
        [
            _rule("always", {}, tag="^v[12]$", kind="regex", untagged=True, repo="app"),
        ],
    )
    _run(pid, dry_run=False)
    assert _tags("team/app") == ["v1", "v2"]
    assert Manifest.objects.filter(digest=untagged).exists()
    assert _tags("team/other") == ["v0", "v1", "v2"]  # no rule applies to it


def test_untagged_artifacts_go_unless_a_rule_includes_them(team, v2):
    _push_versions(v2, n=2)
    reg = InProcess(v2)
    untagged, _ = reg.push_image("team/app", "tmp")
    Tag.objects.filter(name="tmp").delete()
    pid = _create(team, [_rule("always", {})])
    _run(pid, dry_run=False)
    assert _tags() == ["v0", "v1"]
    assert not Manifest.objects.filter(digest=untagged).exists()


def test_immutable_tags_are_never_removed(team, v2):
    _push_versions(v2)
    r = api("padmin").post(
        f"/api/v2.0/projects/{team.pk}/immutabletagrules",
        {
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v0"}],
            "scope_selectors": {
                "repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]
            },
        },
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    pid = _create(team, [_rule("nothing", {})])
    eid = _run(pid, dry_run=False)
    assert _tags() == ["v0"]
    [task] = api("dev").get(f"/api/v2.0/retentions/{pid}/executions/{eid}/tasks").json()
    assert task["retained"] == 1
    log = api("dev").get(f"/api/v2.0/retentions/{pid}/executions/{eid}/tasks/{task['id']}")
    assert "RETAIN (immutable)" in log.content.decode()


def test_days_since_push_and_label_selectors(team, v2):
    _push_versions(v2)  # pushed 5, 4, 3, 2, 1 days ago
    label = api("padmin").post(
        "/api/v2.0/labels",
        {"name": "golden", "scope": "p", "project_id": team.pk},
        content_type="application/json",
    )
    assert label.status_code == 201
    label_id = int(label["Location"].rsplit("/", 1)[1])
    attach = api("padmin").post(
        "/api/v2.0/projects/team/repositories/app/artifacts/v0/labels",
        {"id": label_id},
        content_type="application/json",
    )
    assert attach.status_code == 200, attach.content
    golden = {"kind": "label", "decoration": "withLabels", "pattern": "golden"}
    pid = _create(
        team,
        [
            _rule("nDaysSinceLastPush", {"nDaysSinceLastPush": 3}),
            _rule("always", {}, more=[golden]),
        ],
    )
    _run(pid, dry_run=False)
    assert _tags() == ["v0", "v3", "v4"]


def test_latest_pulled_reads_the_audit_trails_pulls(team, v2):
    _push_versions(v2, n=3)
    now = timezone.now()
    AuditEvent.objects.create(
        occurred_at=now,
        username="dev",
        operation="pull",
        resource_type="artifact",
        resource="team/app:v0",
        project_name="team",
        project_id=team.pk,
    )
    pid = _create(team, [_rule("latestPulledN", {"latestPulledN": 1})])
    _run(pid, dry_run=False)
    assert _tags() == ["v0"]


def test_a_second_run_while_one_is_active_is_a_conflict_and_stop_works(team, v2, monkeypatch):
    monkeypatch.setattr(retention, "_dispatch", lambda eid: None)  # stays Pending
    pid = _create(team, [_rule()])
    eid = _run(pid, dry_run=True)
    again = api("padmin").post(
        f"/api/v2.0/retentions/{pid}/executions", {"dry_run": True}, content_type="application/json"
    )
    assert again.status_code == 409
    bad = api("padmin").patch(
        f"/api/v2.0/retentions/{pid}/executions/{eid}",
        {"action": "pause"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    stop = api("padmin").patch(
        f"/api/v2.0/retentions/{pid}/executions/{eid}",
        {"action": "stop"},
        content_type="application/json",
    )
    assert stop.status_code == 200
    assert RetentionExecution.objects.get(pk=eid).status == "Stopped"
    # A stopped run's task, delivered late, does nothing.
    assert tasks.run_retention.apply(args=[eid]).get() == "Stopped"


def test_the_schedule_starts_runs_whose_cron_names_the_minute(team, v2):
    _push_versions(v2, n=3)
    pid = _create(team, [_rule()], cron="0 30 2 * * *")
    policy = RetentionPolicy.objects.get(pk=pid)
    at = datetime.datetime(2026, 1, 5, 2, 30, tzinfo=datetime.UTC)
    assert retention.scheduled_due(at) == [policy]
    assert retention.scheduled_due(at + datetime.timedelta(minutes=1)) == []
    execution = retention.execution_start(
        actor=None, policy=policy, dry_run=False, trigger="SCHEDULE"
    )
    execution.refresh_from_db()
    assert execution.status == "Success" and execution.trigger == "SCHEDULE"
    assert _tags() == ["v1", "v2"]
    events.deliver()
    assert set(
        AuditEvent.objects.filter(operation="delete", resource_type="artifact").values_list(
            "username", flat=True
        )
    ) == {"retention-scheduler"}


def _terraform_rule(template, params, tag_decoration, tag, untagged, repo_decoration, repo):
    """A rule as terraform-provider-harbor's harbor_retention_policy marshals it
    (Go structs: params' zero values omitted, every other field sent)."""
    return {
        "disabled": False,
        "action": "retain",
        "scope_selectors": {
            "repository": [{"kind": "doublestar", "decoration": repo_decoration, "pattern": repo}]
        },
        "tag_selectors": [
            {
                "kind": "doublestar",
                "decoration": tag_decoration,
                "pattern": tag,
                "extras": '{"untagged":' + ("true" if untagged else "false") + "}",
            }
        ],
        "params": params,
        "template": template,
    }


def _terraform_body(project, rules, cron, policy_id=None):
    body = {
        "algorithm": "or",
        "rules": rules,
        "trigger": {"kind": "Schedule", "references": {}, "settings": {"cron": cron}},
        "scope": {"level": "project", "ref": project.pk},
    }
    if policy_id is not None:
        body["id"] = policy_id
    return body


def test_terraforms_harbor_retention_policy_round_trips(team, v2):
    _push_versions(v2, n=3)
    rules = [
        _terraform_rule(
            "latestPushedK", {"latestPushedK": 1}, "matches", "v*", True, "repoMatches", "**"
        ),
        _terraform_rule("always", {}, "excludes", "v*", False, "repoExcludes", "tmp-*"),
        _terraform_rule(
            "nDaysSinceLastPull",
            {"nDaysSinceLastPull": 7},
            "matches",
            "**",
            True,
            "repoMatches",
            "app",
        ),
    ]
    body = _terraform_body(team, rules, "0 0 0 * * *")
    created = api("padmin").post("/api/v2.0/retentions", body, content_type="application/json")
    assert created.status_code == 201, created.content
    # The provider keeps the Location's path (less /api/v2.0) as the resource id.
    location = created["Location"]
    assert location.startswith("/api/v2.0/retentions/")
    pid = int(location.rsplit("/", 1)[1])
    # Read: what resolveScope, resolveSchedule and resolveRules look at.
    got = api("padmin").get(location).json()
    assert got["scope"]["ref"] == team.pk
    assert got["trigger"]["settings"]["cron"] == "0 0 0 * * *"
    seen = [
        (
            r["template"],
            r["params"],
            r["tag_selectors"][0]["decoration"],
            r["tag_selectors"][0]["pattern"],
            "true" in r["tag_selectors"][0]["extras"],
            r["scope_selectors"]["repository"][0]["decoration"],
            r["scope_selectors"]["repository"][0]["pattern"],
        )
        for r in got["rules"]
    ]
    assert seen == [
        ("latestPushedK", {"latestPushedK": 1}, "matches", "v*", True, "repoMatches", "**"),
        ("always", {}, "excludes", "v*", False, "repoExcludes", "tmp-*"),
        (
            "nDaysSinceLastPull",
            {"nDaysSinceLastPull": 7},
            "matches",
            "**",
            True,
            "repoMatches",
            "app",
        ),
    ]
    # A second create (the provider's retry) fails; it then finds the policy in
    # the project's metadata and updates it there.
    again = api("padmin").post("/api/v2.0/retentions", body, content_type="application/json")
    assert again.status_code == 400
    found = api("padmin").get(f"/api/v2.0/projects/{team.pk}").json()["metadata"]["retention_id"]
    assert int(found) == pid
    updated = api("padmin").put(
        f"/api/v2.0/retentions/{found}",
        _terraform_body(team, rules[:1], "0 0 * * * *"),
        content_type="application/json",
    )
    assert updated.status_code == 200, updated.content
    assert api("padmin").get(location).json()["trigger"]["settings"]["cron"] == "0 0 * * * *"
    # The provider's delete: a PUT with no rules, no schedule and the policy's id.
    deleted = api("padmin").put(
        location, _terraform_body(team, [], "", policy_id=pid), content_type="application/json"
    )
    assert deleted.status_code == 200, deleted.content
    left = api("padmin").get(location).json()
    assert left["rules"] == [] and left["trigger"]["settings"]["cron"] == ""
    # With no rules, a run touches nothing.
    _run(pid, dry_run=False)
    assert _tags() == ["v0", "v1", "v2"]


def test_a_deleted_artifact_takes_its_accessories_along(team, v2):
    digests = _push_versions(v2, n=2)
    reg = InProcess(v2)
    subject = Manifest.objects.get(digest=digests[0])
    body, blobs = artifact(bytes(subject.payload), "application/vnd.cncf.notary.signature", b"sig")
    signature, _ = reg.push("team/app", sha256(body), body, blobs)
    pid = _create(team, [_rule("latestPushedK", {"latestPushedK": 1})])
    eid = _run(pid, dry_run=True)
    [task] = RetentionExecution.objects.get(pk=eid).tasks.all()
    assert task.deleted == [{"digest": digests[0], "tags": ["v0"], "accessories": [signature]}]
    _run(pid, dry_run=False)
    assert set(Manifest.objects.values_list("digest", flat=True)) == {digests[1]}
