"""A Python client generated from Harbor's swagger by openapi-generator-cli (the
kind of client Harbor's own API tests drive) against a live Berth.

tests/peers/build-openapi-client.sh fetches the generator from Maven Central and
generates the package ``harbor_client`` from the swagger go-client v0.213.1
ships, into a git-ignored cache; the fixture below runs it (a second run is a
no-op). The generated client validates every answer against its pydantic
models. Each step is one of Harbor's operations, named by its operationId (the
names of docs/harbor-api-coverage.md), and each step's outcome is a test.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ADMIN, REPO_ROOT
from tests.harbor_clients import conftest as judge
from tests.harbor_clients.conftest import HarborTarget, Outcome, check

pytestmark = [pytest.mark.live, pytest.mark.clients]

# Collected here, as for harborapi: every operation reported, each one ok.
test_every_operation_reported = judge.test_every_operation_reported
test_operation = judge.test_operation

BUILD = REPO_ROOT / "tests" / "peers" / "build-openapi-client.sh"

OPERATIONS = [
    "getPing",
    "getHealth",
    "getSystemInfo",
    "getStatistic",
    "getConfigurations",
    "updateConfigurations",
    "getPermissions",
    "createProject",
    "headProject",
    "listProjects",
    "getProject",
    "updateProject",
    "getProjectSummary",
    "getProjectDeletable",
    "addProjectMetadatas",
    "listProjectMetadatas",
    "getProjectMetadata",
    "updateProjectMetadata",
    "deleteProjectMetadata",
    "createUser",
    "getUser",
    "listUsers",
    "searchUsers",
    "getCurrentUserInfo",
    "getCurrentUserPermissions",
    "updateUserPassword",
    "setCliSecret",
    "setUserSysAdmin",
    "createProjectMember",
    "listProjectMembers",
    "getProjectMember",
    "updateProjectMember",
    "deleteProjectMember",
    "CreateRobot",
    "ListRobot",
    "GetRobotByID",
    "UpdateRobot",
    "RefreshSec",
    "DeleteRobot",
    "CreateImmuRule",
    "ListImmuRules",
    "UpdateImmuRule",
    "DeleteImmuRule",
    "listRepositories",
    "listAllRepositories",
    "getRepository",
    "updateRepository",
    "listArtifacts",
    "getArtifact",
    "createTag",
    "listTags",
    "deleteTag",
    "CopyArtifact",
    "CreateLabel",
    "ListLabels",
    "GetLabelByID",
    "UpdateLabel",
    "addLabel",
    "removeLabel",
    "DeleteLabel",
    "deleteArtifact",
    "deleteRepository",
    "search",
    "listQuotas",
    "getQuota",
    "listAuditLogs",
    "listAuditLogExts",
    "getLogs",
    "getLogExts",
    "deleteUser",
    "deleteProject",
]


@pytest.fixture(scope="module")
def harbor_client() -> Iterator[ModuleType]:
    """The generated package, imported from the cache the build script names."""
    run = subprocess.run(
        ["bash", str(BUILD)], capture_output=True, text=True, timeout=900, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    client_dir = run.stdout.strip().splitlines()[-1]
    assert (Path(client_dir) / "harbor_client").is_dir(), run.stdout
    sys.path.insert(0, client_dir)
    try:
        yield importlib.import_module("harbor_client")
    finally:
        sys.path.remove(client_dir)


def created_id(headers: Any) -> int:
    """The id at the end of a 201's Location."""
    location = {k.lower(): v for k, v in headers.items()}["location"]
    return int(location.rstrip("/").rsplit("/", 1)[-1])


def _drive(hc: Any, target: HarborTarget) -> dict[str, Outcome]:
    config = hc.Configuration(
        host=f"{target.server.url}/api/v2.0", username=ADMIN[0], password=ADMIN[1]
    )
    api = hc.ApiClient(config)
    project, user, member, robot = (
        hc.ProjectApi(api),
        hc.UserApi(api),
        hc.MemberApi(api),
        hc.RobotApi(api),
    )
    metadata, immutable = hc.ProjectMetadataApi(api), hc.ImmutableApi(api)
    repository, artifact = hc.RepositoryApi(api), hc.ArtifactApi(api)
    content = target.content
    outcomes: dict[str, Outcome] = {}
    state: dict[str, Any] = {}

    def step(op: str, run: Callable[[], object]) -> None:
        try:
            outcomes[op] = (True, str(run() or ""))
        except hc.ApiException as exc:
            outcomes[op] = (False, f"{exc.status}: {exc.body}")
        except Exception:  # a validation error, an assertion: the test shows it
            outcomes[op] = (False, traceback.format_exc(limit=3))

    def ping() -> None:
        answer = hc.PingApi(api).get_ping()
        check(answer == "Pong", answer)

    def health() -> None:
        answer = hc.HealthApi(api).get_health()
        check(answer.status == "healthy", answer)
        check({"core", "database"} <= {c.name for c in answer.components}, answer)

    def systeminfo() -> None:
        info = hc.SysteminfoApi(api).get_system_info()
        check(info.auth_mode is not None and info.harbor_version, info)

    def statistic() -> None:
        stats = hc.StatisticApi(api).get_statistic()
        check(stats.total_project_count >= 1 and stats.total_repo_count >= 1, stats)

    def configurations() -> None:
        config = hc.ConfigureApi(api).get_configurations()
        check(config.self_registration is not None and config.auth_mode is not None, config)

    def update_configurations() -> None:
        configure = hc.ConfigureApi(api)
        configure.update_configurations(hc.Configurations(self_registration=True))
        check(configure.get_configurations().self_registration.value is True, "not stored")
        configure.update_configurations(hc.Configurations(self_registration=False))

    def permissions() -> None:
        pool = hc.PermissionsApi(api).get_permissions()
        check(pool.project and pool.system, pool)

    def create_project() -> None:
        req = hc.ProjectReq(project_name="generated", metadata=hc.ProjectMetadata(public="false"))
        answer = project.create_project_with_http_info(req)
        check(answer.status_code == 201, answer.status_code)
        state["pid"] = created_id(answer.headers)

    def head_project() -> None:
        answer = project.head_project_with_http_info("generated")
        check(answer.status_code == 200, answer.status_code)

    def list_projects() -> None:
        found = project.list_projects(name="generated", public=False)
        check([p.name for p in found] == ["generated"], found)

    def get_project() -> None:
        by_id = project.get_project(str(state["pid"]))
        by_name = project.get_project("generated", x_is_resource_name=True)
        check(by_id.project_id == by_name.project_id == state["pid"], (by_id, by_name))
        check(by_id.metadata.public == "false", by_id.metadata)

    def update_project() -> None:
        req = hc.ProjectReq(metadata=hc.ProjectMetadata(auto_scan="true"))
        project.update_project(str(state["pid"]), req)
        check(project.get_project(str(state["pid"])).metadata.auto_scan == "true", "not stored")

    def summary() -> None:
        found = project.get_project_summary(str(state["pid"]))
        check(found.repo_count == 0, found)

    def deletable() -> None:
        found = project.get_project_deletable(str(state["pid"]))
        check(found.deletable is True, found)

    def metadata_get() -> None:
        found = metadata.get_project_metadata(str(state["pid"]), "enable_content_trust")
        check(found == {"enable_content_trust": "false"}, found)

    def metadata_list() -> None:
        found = metadata.list_project_metadatas(str(state["pid"]))
        check(found.get("auto_scan") == "true", found)

    def create_user() -> None:
        req = hc.UserCreationReq(
            username="genuser", password="Gen-Passw0rd-1", email="gen@example.com"
        )
        answer = user.create_user_with_http_info(req)
        check(answer.status_code == 201, answer.status_code)
        state["uid"] = created_id(answer.headers)

    def get_user() -> None:
        found = user.get_user(state["uid"])
        check(found.username == "genuser" and found.email == "gen@example.com", found)

    def list_users() -> None:
        found = user.list_users(q="username=genuser")
        check([u.user_id for u in found] == [state["uid"]], found)

    def search_users() -> None:
        found = user.search_users("genuser")
        check([u.username for u in found] == ["genuser"], found)

    def current_user() -> None:
        found = user.get_current_user_info()
        check(found.username == ADMIN[0] and found.sysadmin_flag, found)

    def current_permissions() -> None:
        found = user.get_current_user_permissions(scope=f"/project/{state['pid']}", relative=True)
        check(any(p.resource == "repository" for p in found), found)

    def password() -> None:
        req = hc.PasswordReq(old_password="Gen-Passw0rd-1", new_password="Gen-Passw0rd-2")
        user.update_user_password(state["uid"], req)

    def cli_secret() -> None:
        """Set as the administrator; read back by its owner in oidc_user_meta;
        then a password of the user (docs/tokens.md)."""
        user.set_cli_secret(state["uid"], hc.OIDCCliSecretReq(secret="Gen-CliSecret-1"))

        def as_genuser(password: str) -> Any:
            config = hc.Configuration(
                host=f"{target.server.url}/api/v2.0", username="genuser", password=password
            )
            return hc.UserApi(hc.ApiClient(config)).get_current_user_info()

        found = as_genuser("Gen-Passw0rd-2")
        check(found.oidc_user_meta and found.oidc_user_meta.secret == "Gen-CliSecret-1", found)
        check(as_genuser("Gen-CliSecret-1").username == "genuser", "signed in by the secret")

    def create_member() -> None:
        req = hc.ProjectMember(role_id=3, member_user=hc.UserEntity(username="genuser"))
        answer = member.create_project_member_with_http_info(str(state["pid"]), project_member=req)
        check(answer.status_code == 201, answer.status_code)
        state["mid"] = created_id(answer.headers)

    def list_members() -> None:
        found = member.list_project_members(str(state["pid"]), entityname="genuser")
        check([m.id for m in found] == [state["mid"]], found)

    def get_member() -> None:
        found = member.get_project_member(str(state["pid"]), state["mid"])
        check(found.entity_name == "genuser" and found.role_id == 3, found)

    def update_member() -> None:
        member.update_project_member(
            str(state["pid"]), state["mid"], role=hc.RoleRequest(role_id=2)
        )
        found = member.get_project_member(str(state["pid"]), state["mid"])
        check(found.role_id == 2, found)

    def robot_permission() -> Any:
        return hc.RobotPermission(
            kind="project",
            namespace="generated",
            access=[hc.Access(resource="repository", action="pull")],
        )

    def create_robot() -> None:
        req = hc.RobotCreate(
            name="gen", level="project", duration=-1, permissions=[robot_permission()]
        )
        created = robot.create_robot(req)
        check(created.name.endswith("gen") and created.secret, created)
        state["rid"] = created.id

    def list_robots() -> None:
        found = robot.list_robot(q=f"Level=project,ProjectID={state['pid']}")
        check([r.id for r in found] == [state["rid"]], found)

    def get_robot() -> None:
        found = robot.get_robot_by_id(state["rid"])
        check(found.level == "project" and found.permissions[0].namespace == "generated", found)
        state["robot"] = found

    def update_robot() -> None:
        found = state["robot"]
        found.description = "generated client"
        robot.update_robot(state["rid"], found)
        check(robot.get_robot_by_id(state["rid"]).description == "generated client", "not stored")

    def refresh_secret() -> None:
        answer = robot.refresh_sec(state["rid"], hc.RobotSec())
        check(bool(answer.secret), answer)

    def immutable_rule(pattern: str) -> Any:
        return hc.ImmutableRule(
            action="immutable",
            template="immutable_template",
            tag_selectors=[
                hc.ImmutableSelector(kind="doublestar", decoration="matches", pattern=pattern)
            ],
            scope_selectors={
                "repository": [
                    hc.ImmutableSelector(kind="doublestar", decoration="repoMatches", pattern="**")
                ]
            },
        )

    def create_rule() -> None:
        answer = immutable.create_immu_rule_with_http_info(str(state["pid"]), immutable_rule("v*"))
        check(answer.status_code == 201, answer.status_code)

    def list_rules() -> None:
        found = immutable.list_immu_rules(str(state["pid"]))
        check([r.tag_selectors[0].pattern for r in found] == ["v*"], found)
        state["rule"] = found[0].id

    def update_rule() -> None:
        immutable.update_immu_rule(str(state["pid"]), state["rule"], immutable_rule("rc*"))
        found = immutable.list_immu_rules(str(state["pid"]))
        check([r.tag_selectors[0].pattern for r in found] == ["rc*"], found)

    def list_repositories() -> None:
        found = repository.list_repositories(content)
        check([r.name for r in found] == [f"{content}/app"], found)

    def list_all_repositories() -> None:
        found = repository.list_all_repositories(q=f"name=~{content}/")
        check([r.name for r in found] == [f"{content}/app"], found)

    def get_repository() -> None:
        found = repository.get_repository(content, "app")
        check(found.name == f"{content}/app" and found.artifact_count == 1, found)

    def update_repository() -> None:
        repository.update_repository(content, "app", hc.Repository(description="from generated"))
        found = repository.get_repository(content, "app")
        check(found.description == "from generated", found)

    def list_artifacts() -> None:
        found = artifact.list_artifacts(content, "app", with_tag=True)
        check([t.name for t in found[0].tags or []] == ["v1"], found)
        state["digest"] = found[0].digest

    def get_artifact() -> None:
        found = artifact.get_artifact(content, "app", "v1")
        check(found.digest == state["digest"], found)

    def create_tag() -> None:
        answer = artifact.create_tag_with_http_info(content, "app", "v1", hc.Tag(name="gen"))
        check(answer.status_code == 201, answer.status_code)

    def list_tags() -> None:
        found = artifact.list_tags(content, "app", "v1")
        check(sorted(t.name for t in found) == ["gen", "v1"], found)

    def delete_tag() -> None:
        artifact.delete_tag(content, "app", "v1", "gen")
        check([t.name for t in artifact.list_tags(content, "app", "v1")] == ["v1"], "kept")

    def copy() -> None:
        answer = artifact.copy_artifact_with_http_info(
            "generated", "copied/app", f"{content}/app:v1"
        )
        check(answer.status_code == 201, answer.status_code)
        found = artifact.get_artifact("generated", "copied/app", state["digest"])
        check(found.digest == state["digest"], found)

    labels = hc.LabelApi(api)

    def labels_of_copy() -> list[str]:
        found = artifact.get_artifact("generated", "copied/app", "v1", with_label=True)
        return [x.name for x in found.labels or []]

    def create_label() -> None:
        label = hc.Label(name="gen-stable", scope="p", project_id=state["pid"], color="#FF0000")
        answer = labels.create_label_with_http_info(label)
        check(answer.status_code == 201, answer.status_code)
        state["label"] = created_id(answer.headers)

    def list_labels() -> None:
        found = labels.list_labels(scope="p", project_id=state["pid"])
        check([(x.id, x.name) for x in found] == [(state["label"], "gen-stable")], found)

    def get_label() -> None:
        found = labels.get_label_by_id(state["label"])
        check((found.scope, found.project_id, found.color) == ("p", state["pid"], "#FF0000"), found)

    def update_label() -> None:
        labels.update_label(state["label"], hc.Label(name="gen-gold"))
        check(labels.get_label_by_id(state["label"]).name == "gen-gold", "not stored")

    def add_label() -> None:
        artifact.add_label("generated", "copied/app", "v1", hc.Label(id=state["label"]))
        check(labels_of_copy() == ["gen-gold"], "not attached")

    def remove_label() -> None:
        artifact.remove_label("generated", "copied/app", "v1", state["label"])
        check(labels_of_copy() == [], "still attached")

    def delete_label() -> None:
        labels.delete_label(state["label"])
        found = labels.list_labels(scope="p", project_id=state["pid"])
        check(found == [], found)

    def delete_artifact() -> None:
        artifact.delete_artifact("generated", "copied/app", state["digest"])
        check(artifact.list_artifacts("generated", "copied/app") == [], "artifact kept")

    def delete_repository() -> None:
        repository.delete_repository("generated", "copied/app")
        check(repository.list_repositories("generated") == [], "repository kept")

    def search() -> None:
        found = hc.SearchApi(api).search("generated")
        check([p.name for p in found.project] == ["generated"], found)

    def quotas(raw: Any) -> list[Any]:
        """The generator types Harbor's ``QuotaRefObject`` (``additionalProperties:
        {}``: any values) as a map of objects, which Harbor's own answers
        (``{"id": 1, "name": …}``) fail too: ``ref`` is checked here, the rest
        by the model."""
        check(raw.status == 200, raw.status)
        body = json.loads(raw.data)
        found = body if isinstance(body, list) else [body]
        for quota in found:
            check(quota["ref"]["id"] == state["pid"] and quota["ref"]["name"] == "generated", quota)
        return [hc.Quota.from_dict({**quota, "ref": None}) for quota in found]

    def list_quotas() -> None:
        raw = hc.QuotaApi(api).list_quotas_without_preload_content(
            reference="project", reference_id=str(state["pid"])
        )
        [found] = quotas(raw)
        state["quota"] = found.id

    def get_quota() -> None:
        [found] = quotas(hc.QuotaApi(api).get_quota_without_preload_content(state["quota"]))
        check(found.id == state["quota"] and "storage" in found.hard, found)

    def audit_logs() -> None:
        found = hc.AuditlogApi(api).list_audit_logs(q="resource=~generated")
        check(len(found) > 0, found)

    def audit_log_exts() -> None:
        found = hc.AuditlogApi(api).list_audit_log_exts(q="resource=~generated")
        check(len(found) > 0, found)

    def project_logs() -> None:
        found = project.get_logs("generated")
        check(len(found) > 0, found)

    def project_log_exts() -> None:
        found = project.get_log_exts("generated")
        check(len(found) > 0, found)

    def delete_user() -> None:
        user.delete_user(state["uid"])
        found = user.list_users(q="username=genuser")
        check(found == [], found)

    def delete_project() -> None:
        project.delete_project(str(state["pid"]))
        check(project.list_projects(name="generated") == [], "project kept")

    pid = lambda: str(state["pid"])  # noqa: E731 - read when the step runs
    step("getPing", ping)
    step("getHealth", health)
    step("getSystemInfo", systeminfo)
    step("getStatistic", statistic)
    step("getConfigurations", configurations)
    step("updateConfigurations", update_configurations)
    step("getPermissions", permissions)
    step("createProject", create_project)
    step("headProject", head_project)
    step("listProjects", list_projects)
    step("getProject", get_project)
    step("updateProject", update_project)
    step("getProjectSummary", summary)
    step("getProjectDeletable", deletable)
    step(
        "addProjectMetadatas",
        lambda: metadata.add_project_metadatas(pid(), metadata={"enable_content_trust": "false"}),
    )
    step("listProjectMetadatas", metadata_list)
    step("getProjectMetadata", metadata_get)
    step(
        "updateProjectMetadata",
        lambda: metadata.update_project_metadata(
            pid(), "auto_scan", metadata={"auto_scan": "false"}
        ),
    )
    step(
        "deleteProjectMetadata",
        lambda: metadata.delete_project_metadata(pid(), "enable_content_trust"),
    )
    step("createUser", create_user)
    step("getUser", get_user)
    step("listUsers", list_users)
    step("searchUsers", search_users)
    step("getCurrentUserInfo", current_user)
    step("getCurrentUserPermissions", current_permissions)
    step("updateUserPassword", password)
    step("setCliSecret", cli_secret)
    step(
        "setUserSysAdmin",
        lambda: user.set_user_sys_admin(state["uid"], hc.UserSysAdminFlag(sysadmin_flag=False)),
    )
    step("createProjectMember", create_member)
    step("listProjectMembers", list_members)
    step("getProjectMember", get_member)
    step("updateProjectMember", update_member)
    step("deleteProjectMember", lambda: member.delete_project_member(pid(), state["mid"]))
    step("CreateRobot", create_robot)
    step("ListRobot", list_robots)
    step("GetRobotByID", get_robot)
    step("UpdateRobot", update_robot)
    step("RefreshSec", refresh_secret)
    step("DeleteRobot", lambda: robot.delete_robot(state["rid"]))
    step("CreateImmuRule", create_rule)
    step("ListImmuRules", list_rules)
    step("UpdateImmuRule", update_rule)
    step("DeleteImmuRule", lambda: immutable.delete_immu_rule(pid(), state["rule"]))
    step("listRepositories", list_repositories)
    step("listAllRepositories", list_all_repositories)
    step("getRepository", get_repository)
    step("updateRepository", update_repository)
    step("listArtifacts", list_artifacts)
    step("getArtifact", get_artifact)
    step("createTag", create_tag)
    step("listTags", list_tags)
    step("deleteTag", delete_tag)
    step("CopyArtifact", copy)
    step("CreateLabel", create_label)
    step("ListLabels", list_labels)
    step("GetLabelByID", get_label)
    step("UpdateLabel", update_label)
    step("addLabel", add_label)
    step("removeLabel", remove_label)
    step("DeleteLabel", delete_label)
    step("deleteArtifact", delete_artifact)
    step("deleteRepository", delete_repository)
    step("search", search)
    step("listQuotas", list_quotas)
    step("getQuota", get_quota)
    step("listAuditLogs", audit_logs)
    step("listAuditLogExts", audit_log_exts)
    step("getLogs", project_logs)
    step("getLogExts", project_log_exts)
    step("deleteUser", delete_user)
    step("deleteProject", delete_project)
    return outcomes


@pytest.fixture(scope="module")
def outcomes(harbor_client: ModuleType, harbor_target: HarborTarget) -> dict[str, Outcome]:
    return _drive(harbor_client, harbor_target)
