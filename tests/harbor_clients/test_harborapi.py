"""harborapi 0.26.2 (PyPI; Harbor's async Python client, with its response
validation on: every answer is parsed into its pydantic models) against a live
Berth. One run of every served operation; each operation's outcome is a test."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from harborapi import HarborAsyncClient
from harborapi.exceptions import StatusError
from harborapi.models import Access as RobotAccess
from harborapi.models import (
    Configurations,
    ImmutableRule,
    ImmutableSelector,
    Label,
    ProjectMetadata,
    ProjectReq,
    QuotaUpdateReq,
    RetentionPolicy,
    RetentionPolicyScope,
    RetentionRule,
    RetentionRuleTrigger,
    RetentionSelector,
    RobotCreate,
    RobotPermission,
    Schedule,
    ScheduleObj,
    Tag,
    UserCreationReq,
    UserProfile,
)

from tests.conftest import ADMIN
from tests.harbor_clients.conftest import (  # noqa: F401 - the two tests run here
    ARTIFACT_OPERATIONS,
    HISTORY,
    LABEL_OPERATIONS,
    HarborTarget,
    Outcome,
    check,
    test_every_operation_reported,
    test_operation,
)

pytestmark = [pytest.mark.live, pytest.mark.clients]

OPERATIONS = [
    "ping",
    "health",
    "systeminfo",
    "systeminfo.volumes",
    "systeminfo.certificate",
    "statistics",
    "config.get",
    "config.update",
    "permissions",
    "project.create_proxy_metadata",
    "project.exists",
    "project.get_by_id",
    "project.list_public_false",
    "project.update",
    "project.summary",
    "project.deletable",
    "metadata.set",
    "metadata.get",
    "metadata.entry",
    "metadata.update_entry",
    "metadata.delete_entry",
    "user.create",
    "user.get_without_comment",
    "user.list",
    "user.search",
    "user.current",
    "user.set_admin",
    "user.update_profile",
    "user.cli_secret",
    "member.add",
    "member.list",
    "member.get",
    "member.update",
    "member.remove",
    "robot.create",
    "robot.list",
    "robot.get",
    "robot.refresh_secret",
    "robot.delete",
    "immutable.create_by_id",
    "immutable.list_by_id",
    "immutable.delete_by_id",
    "repository.list",
    "repository.get",
    *ARTIFACT_OPERATIONS,
    *LABEL_OPERATIONS,
    "artifact.get_with_label",
    "artifact.list_by_label",
    "artifact.remove_label",
    "label.delete",
    "retention.metadata",
    "retention.create",
    "retention.project_retention_id",
    "retention.get",
    "retention.update",
    "retention.dry_run",
    "retention.executions",
    "retention.tasks",
    "retention.task_log",
    "retention.stop",
    "retention.delete",
    "repository.delete",
    "project.artifacts",
    "artifact.accessories",
    "artifact.build_history",
    "quota.list",
    "quota.update",
    "quota.get",
    "gc.create_schedule",
    "gc.get_schedule",
    "gc.update_schedule",
    "gc.bad_cron",
    "gc.bad_workers",
    "gc.run",
    "gc.job",
    "gc.stop",
    "gc.jobs",
    "gc.log",
    "purge.create_schedule",
    "purge.get_schedule",
    "purge.run",
    "purge.job",
    "purge.stop",
    "purge.history",
    "purge.log",
    "search",
    "auditlog.list",
    "project.logs",
    "user.delete",
    "project.delete",
]


async def gc_and_purge(client: HarborAsyncClient, step: Any, state: dict[str, Any]) -> None:
    """Harbor's garbage collection and audit-log purge, as harborapi (and the
    Terraform provider's harbor_garbage_collection) drive them. The server runs
    no worker here: runs stay Pending until stopped."""
    gc_parameters = {"delete_untagged": True, "workers": 3, "dry_run": False}

    async def gc_create() -> str:
        return await client.create_gc_schedule(
            Schedule(
                schedule=ScheduleObj(type="Daily", cron="0 0 0 * * *"), parameters=gc_parameters
            )
        )

    async def gc_get() -> None:
        found = await client.get_gc_schedule()
        check((found.schedule.type.value, found.schedule.cron) == ("Daily", "0 0 0 * * *"), found)
        check(found.schedule.next_scheduled_time is not None, found)
        check(found.parameters["workers"] == 3, found)

    async def gc_update() -> None:
        await client.update_gc_schedule(
            Schedule(
                schedule=ScheduleObj(type="Custom", cron="0 30 3 * * 6"), parameters=gc_parameters
            )
        )
        found = await client.get_gc_schedule()
        check((found.schedule.type.value, found.schedule.cron) == ("Custom", "0 30 3 * * 6"), found)

    async def refused(schedule: Schedule) -> str:
        try:
            await client.create_gc_schedule(schedule)
        except StatusError as exc:
            check(exc.status_code == 400, exc)
            return str(exc.status_code)
        raise AssertionError("accepted")

    async def gc_run() -> str:
        location = await client.create_gc_schedule(
            Schedule(
                schedule=ScheduleObj(type="Manual"), parameters={**gc_parameters, "dry_run": True}
            )
        )
        state["gc"] = int(location.rstrip("/").rsplit("/", 1)[-1])
        return location

    async def gc_job() -> None:
        job = await client.get_gc_job(state["gc"])
        check(
            (job.id, job.job_name, job.job_kind) == (state["gc"], "GARBAGE_COLLECTION", "MANUAL"),
            job,
        )
        check(job.job_status in ("Pending", "Running", "Success"), job)

    async def gc_stop() -> None:
        # harborapi 0.26.2 has no method for stopGC: its request method.
        await client.put(f"/system/gc/{state['gc']}")
        job = await client.get_gc_job(state["gc"])
        check(job.job_status in ("Stopped", "Success"), job)

    async def gc_jobs() -> None:
        jobs = await client.get_gc_jobs()
        check([j.id for j in jobs] == [state["gc"]], jobs)
        check('"dry_run": true' in (jobs[0].job_parameters or ""), jobs)

    async def purge_create() -> str:
        return await client.create_purge_job_schedule(
            Schedule(
                schedule=ScheduleObj(type="Hourly", cron="0 0 * * * *"),
                parameters={
                    "audit_retention_hour": 168,
                    "include_event_types": "pull_artifact",
                    "dry_run": True,
                },
            )
        )

    async def purge_get() -> None:
        found = await client.get_purge_job_schedule()
        check(found.schedule.type.value == "Hourly", found)

    async def purge_run() -> str:
        location = await client.create_purge_job_schedule(
            Schedule(
                schedule=ScheduleObj(type="Manual"),
                parameters={"audit_retention_hour": 1, "dry_run": True},
            )
        )
        state["purge"] = int(location.rstrip("/").rsplit("/", 1)[-1])
        return location

    async def purge_job() -> None:
        job = await client.get_purge_job(state["purge"])
        check((job.id, job.job_name) == (state["purge"], "PURGE_AUDIT_LOG"), job)

    async def purge_history() -> None:
        jobs = await client.get_purge_job_history()
        check([j.id for j in jobs] == [state["purge"]], jobs)

    await step("gc.create_schedule", gc_create)
    await step("gc.get_schedule", gc_get)
    await step("gc.update_schedule", gc_update)
    await step(
        "gc.bad_cron",
        lambda: refused(Schedule(schedule=ScheduleObj(type="Custom", cron="0 61 * * * *"))),
    )
    await step(
        "gc.bad_workers",
        lambda: refused(Schedule(schedule=ScheduleObj(type="Manual"), parameters={"workers": 11})),
    )
    await step("gc.run", gc_run)
    await step("gc.job", gc_job)
    await step("gc.stop", gc_stop)
    await step("gc.jobs", gc_jobs)
    await step("gc.log", lambda: client.get_gc_log(state["gc"], as_list=False))
    await step("purge.create_schedule", purge_create)
    await step("purge.get_schedule", purge_get)
    await step("purge.run", purge_run)
    await step("purge.job", purge_job)
    await step("purge.stop", lambda: client.stop_purge_job(state["purge"]))
    await step("purge.history", purge_history)
    await step("purge.log", lambda: client.get_purge_job_log(state["purge"]))


async def _drive(target: HarborTarget) -> dict[str, Outcome]:
    url = f"{target.server.url}/api/v2.0"
    client = HarborAsyncClient(url=url, username=ADMIN[0], secret=ADMIN[1], validate=True)
    content = target.content
    outcomes: dict[str, Outcome] = {}
    state: dict[str, Any] = {}

    async def step(op: str, run: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[op] = (True, str(await run() or ""))
        except StatusError as exc:
            outcomes[op] = (False, f"{exc.status_code}: {exc}")
        except Exception:  # a validation error, an assertion: the test shows it
            outcomes[op] = (False, traceback.format_exc(limit=3))

    async def ping() -> str:
        answer = await client.ping()
        check(answer == "Pong", answer)
        return answer

    async def config_get() -> None:
        config = await client.get_config()
        # Every field of Harbor's shape is there (harbor-cli's `config view`).
        check(config.oidc_verify_cert is not None and config.ldap_filter is not None, config)

    async def config_update() -> None:
        await client.update_config(
            Configurations(
                oidc_verify_cert=True,
                token_expiration=45,
                banner_message="",
                ldap_filter="",
                self_registration=False,
            )
        )

    async def create_project() -> str:
        # Terraform's harbor_project sends all of Harbor's metadata keys.
        metadata = ProjectMetadata.model_validate(
            {
                "public": "false",
                "auto_scan": "true",
                "proxy_cache_local_on_not_found": "false",
                "max_upstream_conn": "-1",
                "proxy_referrer_api": "false",
                "proxy_cache_filter_pattern": "",
                "proxy_cache_filter_kind": "doublestar",
            }
        )
        location = await client.create_project(
            ProjectReq(project_name="harborapi", metadata=metadata)
        )
        state["pid"] = int(location.rstrip("/").rsplit("/", 1)[-1])
        return location

    async def get_by_id() -> None:
        project = await client.get_project(state["pid"])
        check(project.name == "harborapi", project)
        check(project.metadata.model_extra.get("max_upstream_conn") == "-1", project.metadata)

    async def list_public_false() -> None:
        projects = await client.get_projects(name="harborapi", public=False)
        check([p.name for p in projects] == ["harborapi"], projects)

    async def set_metadata() -> None:
        await client.set_project_metadata(
            state["pid"], ProjectMetadata(enable_content_trust="false")
        )

    async def get_metadata() -> None:
        metadata = await client.get_project_metadata(state["pid"])
        check(metadata.enable_content_trust == "false", metadata)

    async def metadata_entry() -> None:
        entry = await client.get_project_metadata_entry(state["pid"], "auto_scan")
        check(entry == {"auto_scan": "true"}, entry)

    async def create_user() -> str:
        location = await client.create_user(
            UserCreationReq(username="pyuser", password="Py-Passw0rd-1", email="py@example.com")
        )
        state["uid"] = int(location.rstrip("/").rsplit("/", 1)[-1])
        return location

    async def user_without_comment() -> None:
        user = await client.get_user(state["uid"])
        # Harbor leaves out an empty comment; the model's default is None.
        check(user.comment is None and user.realname is None, user)

    async def cli_secret() -> None:
        """Harbor's setCliSecret; its owner sees it in oidc_user_meta, and it
        is a password for the API (docs/tokens.md)."""
        await client.set_user_cli_secret(state["uid"], "Py-CliSecret-1")
        owner = HarborAsyncClient(url=url, username="pyuser", secret="Py-Passw0rd-1", validate=True)
        me = await owner.get_current_user()
        check(me.oidc_user_meta is not None and me.oidc_user_meta.secret == "Py-CliSecret-1", me)
        by_secret = HarborAsyncClient(
            url=url, username="pyuser", secret="Py-CliSecret-1", validate=True
        )
        check((await by_secret.get_current_user()).username == "pyuser", "signed in by the secret")

    async def update_profile() -> None:
        profile = UserProfile(email="py2@example.com", realname="Py Thon", comment="from harborapi")
        await client.update_user(state["uid"], profile)
        user = await client.get_user(state["uid"])
        check(
            (user.email, user.realname, user.comment) == tuple(profile.model_dump().values()), user
        )

    async def add_member() -> str:
        location = await client.add_project_member_user(state["pid"], "pyuser", 3)
        state["mid"] = int(location.rstrip("/").rsplit("/", 1)[-1])
        return location

    async def get_member() -> None:
        member = await client.get_project_member(state["pid"], state["mid"])
        check(member.entity_name == "pyuser", member)

    async def create_robot() -> str:
        created = await client.create_robot(
            RobotCreate(
                name="py",
                level="project",
                duration=-1,
                permissions=[
                    RobotPermission(
                        kind="project",
                        namespace="harborapi",
                        access=[RobotAccess(resource="repository", action="pull")],
                    )
                ],
            )
        )
        state["rid"] = created.id
        return created.name

    async def list_robots() -> None:
        robots = await client.get_robots(query=f"Level=project,ProjectID={state['pid']}")
        check([r.id for r in robots] == [state["rid"]], robots)

    async def immutable_create() -> None:
        rule = ImmutableRule(
            action="immutable",
            template="immutable_template",
            tag_selectors=[
                ImmutableSelector(kind="doublestar", decoration="matches", pattern="v*")
            ],
            scope_selectors={
                "repository": [
                    ImmutableSelector(kind="doublestar", decoration="repoMatches", pattern="**")
                ]
            },
        )
        await client.create_project_immutable_tag_rule(state["pid"], rule)

    async def immutable_list() -> None:
        rules = await client.get_project_immutable_tag_rules(state["pid"])
        check(len(rules) == 1, rules)
        state["rule"] = rules[0].id

    async def artifacts() -> None:
        found = await client.get_artifacts(content, "app", with_tag=True)
        check([t.name for t in found[0].tags or []] == ["v1"], found)

    async def tags() -> None:
        found = await client.get_artifact_tags(content, "app", "v1")
        check(sorted(t.name for t in found) == ["py", "v1"], found)

    def location_id(location: str) -> int:
        return int(location.rstrip("/").rsplit("/", 1)[-1])

    async def create_label() -> str:
        label = Label(name="py-approved", color="#00FF00", description="harborapi", scope="g")
        location = await client.create_label(label)
        state["global_label"] = location_id(location)
        return location

    async def create_project_label() -> str:
        label = Label(name="py-stable", scope="p", project_id=state["pid"])
        location = await client.create_label(label)
        state["project_label"] = location_id(location)
        return location

    async def list_labels() -> None:
        found = await client.get_labels(scope="g", name="py-approved")
        check([x.id for x in found] == [state["global_label"]], found)
        check(found[0].project_id == 0 and found[0].creation_time is not None, found)

    async def list_project_labels() -> None:
        found = await client.get_labels(scope="p", project_id=state["pid"])
        check([x.id for x in found] == [state["project_label"]], found)

    async def get_label() -> None:
        label = await client.get_label(state["global_label"])
        check((label.name, label.scope, label.color) == ("py-approved", "g", "#00FF00"), label)

    async def update_label() -> None:
        await client.update_label(state["global_label"], Label(description="updated"))
        label = await client.get_label(state["global_label"])
        check((label.description, label.color) == ("updated", "#00FF00"), label)

    async def add_labels() -> None:
        for key in ("global_label", "project_label"):
            await client.add_artifact_label("harborapi", "copied", "v1", Label(id=state[key]))

    async def artifact_labels() -> list[str]:
        artifact = await client.get_artifact("harborapi", "copied", "v1", with_label=True)
        return sorted(x.name for x in artifact.labels or [])

    async def get_with_label() -> None:
        names = await artifact_labels()
        check(names == ["py-approved", "py-stable"], names)

    async def list_by_label() -> None:
        ids = f"{state['global_label']} {state['project_label']}"
        found = await client.get_artifacts(
            "harborapi", "copied", query=f"labels=({ids})", with_label=True
        )
        check([len(a.labels or []) for a in found] == [2], found)

    async def remove_label() -> None:
        # harborapi 0.26.2 has no method for removeLabel: its request method.
        path = "/projects/harborapi/repositories/copied/artifacts/v1/labels"
        await client.delete(f"{path}/{state['project_label']}")
        names = await artifact_labels()
        check(names == ["py-approved"], names)

    async def delete_label() -> None:
        await client.delete_label(state["global_label"])
        names = await artifact_labels()
        check(names == [], names)

    def retention_rule(template: str, params: dict[str, Any], pattern: str) -> RetentionRule:
        return RetentionRule(
            action="retain",
            template=template,
            params=params,
            tag_selectors=[
                RetentionSelector(
                    kind="doublestar",
                    decoration="matches",
                    pattern=pattern,
                    extras='{"untagged":true}',
                )
            ],
            scope_selectors={
                "repository": [
                    RetentionSelector(kind="doublestar", decoration="repoMatches", pattern="**")
                ]
            },
        )

    def retention_policy(*rules: RetentionRule) -> RetentionPolicy:
        return RetentionPolicy(
            algorithm="or",
            rules=list(rules),
            trigger=RetentionRuleTrigger(kind="Schedule", settings={"cron": "0 0 0 * * *"}),
            scope=RetentionPolicyScope(level="project", ref=state["pid"]),
        )

    async def retention_metadata() -> None:
        meta = await client.get_retention_metadata()
        names = [t.rule_template for t in meta.templates or []]
        check("latestPushedK" in names and "nDaysSinceLastPull" in names, meta)

    async def retention_create() -> str:
        policy = retention_policy(retention_rule("latestPushedK", {"latestPushedK": 0}, "v*"))
        location = await client.create_retention_policy(policy)
        state["retention"] = int(location.rsplit("/", 1)[1])
        return location

    async def retention_project_id() -> None:
        found = await client.get_project_retention_id(state["pid"])
        check(found == state["retention"], found)

    async def retention_get() -> None:
        policy = await client.get_retention_policy(state["retention"])
        check(policy.scope is not None and policy.scope.ref == state["pid"], policy)
        rule = (policy.rules or [None])[0]
        check(rule is not None and rule.params == {"latestPushedK": 0}, policy)

    async def retention_update() -> None:
        policy = retention_policy(
            retention_rule("latestPushedK", {"latestPushedK": 0}, "v*"),
            retention_rule("always", {}, "keep-*"),
        )
        await client.update_retention_policy(state["retention"], policy)
        got = await client.get_retention_policy(state["retention"])
        check([r.template for r in got.rules or []] == ["latestPushedK", "always"], got)

    async def retention_dry_run() -> str:
        location = await client.start_retention_execution(state["retention"], dry_run=True)
        state["execution"] = int(location.rsplit("/", 1)[1])
        # The live server here runs no worker: run the job as one would.
        ran = target.server.manage(
            "shell",
            "-c",
            "from registry.tasks import run_retention; "
            f"run_retention.apply(args=[{state['execution']}])",
        )
        check(ran.returncode == 0, ran.stderr)
        return location

    async def retention_executions() -> None:
        found = await client.get_retention_executions(state["retention"])
        check(
            [(e.id, e.status, e.dry_run) for e in found] == [(state["execution"], "Success", True)],
            found,
        )

    async def retention_tasks() -> None:
        found = await client.get_retention_tasks(state["retention"], state["execution"])
        check(
            [(t.repository, t.total, t.retained) for t in found] == [("harborapi/copied", 1, 0)],
            found,
        )
        state["task"] = found[0].id

    async def retention_task_log() -> None:
        text = await client.get_retention_execution_task_log(
            state["retention"], state["execution"], state["task"]
        )
        check("WOULD DELETE" in text and "v1" in text, text)

    async def retention_stop() -> None:
        location = await client.start_retention_execution(state["retention"], dry_run=True)
        execution = int(location.rsplit("/", 1)[1])
        await client.stop_retention_execution(state["retention"], execution)
        found = await client.get_retention_executions(state["retention"])
        check(found[0].id == execution and found[0].status == "Stopped", found)

    async def quotas() -> None:
        found = await client.get_quotas(reference="project", reference_id=str(state["pid"]))
        check(len(found) == 1, found)

    async def volumes() -> None:
        info = await client.get_system_volume_info()
        check(len(info.storage or []) == 1 and info.storage[0].total > 0, info)

    async def no_certificate() -> int:
        # None configured: Harbor's 404 (harborapi hands back any answer as a file).
        answer = await client.get_system_certificate()
        check(answer.response.status_code == 404, answer.content)
        check(answer.response.json()["errors"][0]["code"] == "NOT_FOUND", answer.content)
        return answer.response.status_code

    async def project_artifacts() -> None:
        found = await client.get_project_artifacts(
            target.attached, query="tags=v1", with_tag=True, with_accessory=True
        )
        check(len(found) == 1, found)
        check([a.type for a in found[0].accessories or []] == ["signature.notation"], found)

    async def accessories() -> None:
        found = await client.get_artifact_accessories(target.attached, "app", "v1")
        check([a.subject_artifact_repo for a in found] == [f"{target.attached}/app"], found)

    async def build_history() -> None:
        entries = await client.get_artifact_build_history(target.attached, "app", "v1")
        check([e.created_by for e in entries] == [h["created_by"] for h in HISTORY], entries)

    async def quota_update() -> None:
        found = await client.get_quotas(reference="project", reference_id=str(state["pid"]))
        state["qid"] = found[0].id
        await client.update_quota(state["qid"], QuotaUpdateReq(hard={"storage": 5 << 30}))

    async def quota_get() -> None:
        quota = await client.get_quota(state["qid"])
        check(quota.hard is not None and quota.hard.root == {"storage": 5 << 30}, quota)

    async def search() -> None:
        found = await client.search("harborapi")
        check([p.name for p in found.project or []] == ["harborapi"], found)

    async def audit() -> None:
        logs = await client.get_audit_logs(query="resource=~harborapi")
        check(len(logs) > 0, logs)

    await step("ping", ping)
    await step("health", client.health_check)
    await step("systeminfo", client.get_system_info)
    await step("systeminfo.volumes", volumes)
    await step("systeminfo.certificate", no_certificate)
    await step("statistics", client.get_statistics)
    await step("config.get", config_get)
    await step("config.update", config_update)
    await step("permissions", client.get_permissions)
    await step("project.create_proxy_metadata", create_project)
    await step("project.exists", lambda: client.project_exists("harborapi"))
    await step("project.get_by_id", get_by_id)
    await step("project.list_public_false", list_public_false)
    await step(
        "project.update",
        lambda: client.update_project(
            state["pid"], ProjectReq(metadata=ProjectMetadata(prevent_vul="true"))
        ),
    )
    await step("project.summary", lambda: client.get_project_summary(state["pid"]))
    await step("project.deletable", lambda: client.get_project_deletable(state["pid"]))
    await step("metadata.set", set_metadata)
    await step("metadata.get", get_metadata)
    await step("metadata.entry", metadata_entry)
    await step(
        "metadata.update_entry",
        lambda: client.update_project_metadata_entry(
            state["pid"], "auto_scan", ProjectMetadata(auto_scan="false")
        ),
    )
    await step(
        "metadata.delete_entry",
        lambda: client.delete_project_metadata_entry(state["pid"], "enable_content_trust"),
    )
    await step("user.create", create_user)
    await step("user.get_without_comment", user_without_comment)
    await step("user.list", lambda: client.get_users(query="username=pyuser"))
    await step("user.search", lambda: client.search_users_by_username("pyuser"))
    await step("user.current", client.get_current_user)
    await step("user.set_admin", lambda: client.set_user_admin(state["uid"], False))
    await step("user.update_profile", update_profile)
    await step("user.cli_secret", cli_secret)
    await step("member.add", add_member)
    await step("member.list", lambda: client.get_project_members(state["pid"]))
    await step("member.get", get_member)
    await step(
        "member.update", lambda: client.update_project_member_role(state["pid"], state["mid"], 2)
    )
    await step("member.remove", lambda: client.remove_project_member(state["pid"], state["mid"]))
    await step("robot.create", create_robot)
    await step("robot.list", list_robots)
    await step("robot.get", lambda: client.get_robot(state["rid"]))
    await step("robot.refresh_secret", lambda: client.refresh_robot_secret(state["rid"], ""))
    await step("robot.delete", lambda: client.delete_robot(state["rid"]))
    await step("immutable.create_by_id", immutable_create)
    await step("immutable.list_by_id", immutable_list)
    await step(
        "immutable.delete_by_id",
        lambda: client.delete_project_immutable_tag_rule(state["pid"], state["rule"]),
    )
    await step("repository.list", lambda: client.get_repositories(content))
    await step("repository.get", lambda: client.get_repository(content, "app"))
    await step("artifact.list", artifacts)
    await step("artifact.get", lambda: client.get_artifact(content, "app", "v1"))
    await step(
        "tag.create", lambda: client.create_artifact_tag(content, "app", "v1", Tag(name="py"))
    )
    await step("tag.list", tags)
    await step("tag.delete", lambda: client.delete_artifact_tag(content, "app", "v1", "py"))
    await step(
        "artifact.copy", lambda: client.copy_artifact("harborapi", "copied", f"{content}/app:v1")
    )
    await step("label.create", create_label)
    await step("label.create_project", create_project_label)
    await step("label.list", list_labels)
    await step("label.list_project", list_project_labels)
    await step("label.get", get_label)
    await step("label.update", update_label)
    await step("artifact.add_label", add_labels)
    await step("artifact.get_with_label", get_with_label)
    await step("artifact.list_by_label", list_by_label)
    await step("artifact.remove_label", remove_label)
    await step("label.delete", delete_label)
    await step("retention.metadata", retention_metadata)
    await step("retention.create", retention_create)
    await step("retention.project_retention_id", retention_project_id)
    await step("retention.get", retention_get)
    await step("retention.update", retention_update)
    await step("retention.dry_run", retention_dry_run)
    await step("retention.executions", retention_executions)
    await step("retention.tasks", retention_tasks)
    await step("retention.task_log", retention_task_log)
    await step("retention.stop", retention_stop)
    await step("retention.delete", lambda: client.delete_retention_policy(state["retention"]))
    await step("repository.delete", lambda: client.delete_repository("harborapi", "copied"))
    await step("project.artifacts", project_artifacts)
    await step("artifact.accessories", accessories)
    await step("artifact.build_history", build_history)
    await step("quota.list", quotas)
    await step("quota.update", quota_update)
    await step("quota.get", quota_get)
    await gc_and_purge(client, step, state)
    await step("search", search)
    await step("auditlog.list", audit)
    await step("project.logs", lambda: client.get_project_logs("harborapi"))
    await step("user.delete", lambda: client.delete_user(state["uid"]))
    await step("project.delete", lambda: client.delete_project(state["pid"]))
    return outcomes


@pytest.fixture(scope="module")
def outcomes(harbor_target: HarborTarget) -> dict[str, Outcome]:
    return asyncio.run(_drive(harbor_target))
