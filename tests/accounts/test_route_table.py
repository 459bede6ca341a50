"""C25: every API route x method has an expected answer for anonymous, each of
the five roles, a non-member, a project robot, a system robot and the sysadmin.
The routes come from the URL configuration: a new route without an entry here
fails this test."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import IdentityProvider, Member, Project, Robot, User, UserGroup
from accounts.services import pats, robots
from accounts.services.auth import actor_for_user
from registry.models import Repository, RetentionExecution, RetentionTask, SystemJob
from registry.services import immutability, labels, retention
from tests.conftest import ADMIN, basic
from tests.registry.helpers import InProcess
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

PRINCIPALS = [
    "anon",
    "lguest",
    "guest",
    "dev",
    "maint",
    "padmin",
    "outsider",
    "probot",
    "srobot",
    "admin",
]
MEMBERS = "lguest guest dev maint padmin"
EVERYONE = " ".join(PRINCIPALS)
AUTHENTICATED = " ".join(p for p in PRINCIPALS if p != "anon")
USERS = "lguest guest dev maint padmin outsider admin"

# (method, route) -> (who may, body). "Who may" gets neither 401, 403 nor 404;
# everyone else gets one of those.
TABLE: dict[tuple[str, str], tuple[str, dict | None]] = {
    ("GET", "openapi.json"): (EVERYONE, None),
    ("GET", "ping"): (EVERYONE, None),
    ("GET", "health"): (EVERYONE, None),
    ("GET", "systeminfo"): (EVERYONE, None),
    ("GET", "projects"): (EVERYONE, None),
    ("GET", "statistics"): (EVERYONE, None),
    ("GET", "search"): (EVERYONE, None),
    ("GET", "quotas"): ("admin", None),
    ("GET", "quotas/<id:qid>"): (f"{MEMBERS} admin", None),
    ("PUT", "quotas/<id:qid>"): ("admin", {"hard": {"storage": 1024}}),
    ("GET", "systeminfo/volumes"): ("admin", None),
    # No root certificate configured: a 404 for everyone.
    ("GET", "systeminfo/getcert"): ("", None),
    ("GET", "configurations"): ("admin", None),
    ("PUT", "configurations"): ("admin", {"self_registration": True}),
    ("GET", "permissions"): (AUTHENTICATED, None),
    ("GET", "users/current/permissions"): ("lguest guest dev maint padmin outsider admin", None),
    ("POST", "projects"): (
        "lguest guest dev maint padmin outsider srobot admin",
        {"project_name": "fresh"},
    ),
    ("HEAD", "projects"): (f"{MEMBERS} probot admin", None),
    ("GET", "projects/<str:ref>"): (f"{MEMBERS} probot admin", None),
    ("PUT", "projects/<str:ref>"): ("padmin admin", {"metadata": {"public": "false"}}),
    ("DELETE", "projects/<str:ref>"): ("padmin admin", None),
    ("GET", "projects/<str:ref>/_deletable"): ("padmin admin", None),
    ("GET", "projects/<str:ref>/summary"): (f"{MEMBERS} admin", None),
    ("GET", "projects/<str:ref>/metadatas"): ("maint padmin admin", None),
    ("POST", "projects/<str:ref>/metadatas"): ("padmin admin", {"auto_scan": "true"}),
    ("GET", "projects/<str:ref>/metadatas/"): ("maint padmin admin", None),
    ("POST", "projects/<str:ref>/metadatas/"): ("padmin admin", {"auto_scan": "true"}),
    ("GET", "projects/<str:ref>/metadatas/<str:name>"): ("maint padmin admin", None),
    ("PUT", "projects/<str:ref>/metadatas/<str:name>"): ("padmin admin", {"public": "true"}),
    ("DELETE", "projects/<str:ref>/metadatas/<str:name>"): ("padmin admin", None),
    ("GET", "projects/<str:ref>/members"): ("guest dev maint padmin admin", None),
    ("POST", "projects/<str:ref>/members"): (
        "padmin admin",
        {"role_id": 3, "member_user": {"username": "outsider"}},
    ),
    ("GET", "projects/<str:ref>/members/<id:mid>"): ("guest dev maint padmin admin", None),
    ("PUT", "projects/<str:ref>/members/<id:mid>"): ("padmin admin", {"role_id": 2}),
    ("DELETE", "projects/<str:ref>/members/<id:mid>"): ("padmin admin", None),
    ("GET", "projects/<str:ref>/logs"): ("padmin admin", None),
    ("GET", "projects/<str:ref>/immutabletagrules"): ("maint padmin admin", None),
    ("POST", "projects/<str:ref>/immutabletagrules"): (
        "maint padmin admin",
        {"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "rc-*"}]},
    ),
    ("PUT", "projects/<str:ref>/immutabletagrules/<id:rule_id>"): (
        "maint padmin admin",
        {"disabled": True},
    ),
    ("DELETE", "projects/<str:ref>/immutabletagrules/<id:rule_id>"): ("maint padmin admin", None),
    ("GET", "projects/<str:ref>/repositories"): (f"{MEMBERS} probot admin", None),
    ("GET", "projects/<str:ref>/repositories/<path:repo>"): (f"{MEMBERS} probot admin", None),
    ("PUT", "projects/<str:ref>/repositories/<path:repo>"): (
        "dev maint padmin admin",
        {"description": "x"},
    ),
    ("DELETE", "projects/<str:ref>/repositories/<path:repo>"): ("maint padmin admin", None),
    ("GET", "projects/<str:ref>/repositories/<path:repo>/artifacts"): (
        f"{MEMBERS} probot admin",
        None,
    ),
    ("POST", "projects/<str:ref>/repositories/<path:repo>/artifacts"): (
        "dev maint padmin admin",
        None,
    ),
    ("GET", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>"): (
        f"{MEMBERS} probot admin",
        None,
    ),
    ("DELETE", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>"): (
        "maint padmin admin",
        None,
    ),
    ("GET", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/tags"): (
        f"{MEMBERS} probot admin",
        None,
    ),
    ("POST", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/tags"): (
        "dev maint padmin probot admin",
        {"name": "newtag"},
    ),
    (
        "DELETE",
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/tags/<str:tag>",
    ): ("maint padmin admin", None),
    ("POST", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/labels"): (
        "dev maint padmin admin",
        {"id": "<label_id>"},
    ),
    (
        "DELETE",
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/labels/<id:label_id>",
    ): ("dev maint padmin admin", None),
    ("GET", "labels"): ("guest dev maint padmin admin", None),
    ("POST", "labels"): ("admin", {"name": "fresh", "scope": "g"}),
    ("GET", "labels/<id:label_id>"): ("guest dev maint padmin admin", None),
    ("PUT", "labels/<id:label_id>"): ("maint padmin admin", {"description": "x"}),
    ("DELETE", "labels/<id:label_id>"): ("maint padmin admin", None),
    ("GET", "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/accessories"): (
        f"{MEMBERS} admin",
        None,
    ),
    (
        "GET",
        "projects/<str:ref>/repositories/<path:repo>/artifacts/<str:reference>/additions/<str:addition>",
    ): (f"{MEMBERS} admin", None),
    ("GET", "projects/<str:ref>/artifacts"): (f"{MEMBERS} probot admin", None),
    ("GET", "repositories"): (EVERYONE, None),
    ("GET", "audit-logs"): (AUTHENTICATED, None),
    ("GET", "auditlog-exts"): (AUTHENTICATED, None),
    ("GET", "auditlog-exts/events"): (AUTHENTICATED, None),
    ("GET", "projects/<str:ref>/auditlog-exts"): ("padmin admin", None),
    ("GET", "users"): ("admin", None),
    ("POST", "users"): ("admin", {"username": "made", "password": "Strong123"}),
    ("GET", "users/current"): ("lguest guest dev maint padmin outsider admin", None),
    ("GET", "users/search"): (AUTHENTICATED, None),
    ("GET", "users/<id:uid>"): ("dev admin", None),
    ("PUT", "users/<id:uid>"): ("dev admin", {"realname": "Dev"}),
    ("DELETE", "users/<id:uid>"): ("admin", None),
    ("PUT", "users/<id:uid>/password"): (
        "dev admin",
        {"old_password": PASSWORD, "new_password": "Another123"},
    ),
    ("PUT", "users/<id:uid>/sysadmin"): ("admin", {"sysadmin_flag": True}),
    ("PUT", "users/<id:uid>/cli_secret"): ("dev admin", {"secret": "CliSecret123"}),
    ("GET", "berth/tokens"): (USERS, None),
    ("POST", "berth/tokens"): (
        USERS,
        {
            "name": "made",
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "*",
                    "access": [{"resource": "repository", "action": "pull"}],
                }
            ],
        },
    ),
    ("GET", "berth/tokens/<id:tid>"): ("dev admin", None),
    ("DELETE", "berth/tokens/<id:tid>"): ("dev admin", None),
    ("GET", "robots"): ("srobot admin", None),
    ("GET", "system/gc"): ("admin", None),
    ("GET", "system/gc/<id:gc_id>"): ("admin", None),
    ("PUT", "system/gc/<id:gc_id>"): ("admin", None),
    ("GET", "system/gc/<id:gc_id>/log"): ("admin", None),
    ("GET", "system/gc/schedule"): ("admin", None),
    ("POST", "system/gc/schedule"): ("admin", {"schedule": {"type": "None"}}),
    ("PUT", "system/gc/schedule"): ("admin", {"schedule": {"type": "None"}}),
    ("GET", "system/purgeaudit"): ("admin", None),
    ("GET", "system/purgeaudit/<id:purge_id>"): ("admin", None),
    ("PUT", "system/purgeaudit/<id:purge_id>"): ("admin", None),
    ("GET", "system/purgeaudit/<id:purge_id>/log"): ("admin", None),
    ("GET", "system/purgeaudit/schedule"): ("admin", None),
    ("POST", "system/purgeaudit/schedule"): ("admin", {"schedule": {"type": "None"}}),
    ("PUT", "system/purgeaudit/schedule"): ("admin", {"schedule": {"type": "None"}}),
    ("POST", "robots"): (
        "padmin admin",
        {
            "name": "made",
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
    ),
    ("GET", "robots/<id:rid>"): ("guest dev maint padmin admin", None),
    ("PUT", "robots/<id:rid>"): ("padmin admin", {"description": "x"}),
    ("PATCH", "robots/<id:rid>"): ("padmin admin", {}),
    ("DELETE", "robots/<id:rid>"): ("padmin admin", None),
    # No LDAP provider is configured: the admin's ping answers success false,
    # searches and imports a 400.
    ("POST", "ldap/ping"): ("admin", {}),
    ("POST", "system/oidc/ping"): ("admin", {"url": "http://127.0.0.1:1"}),
    ("GET", "ldap/users/search"): ("admin", None),
    ("POST", "ldap/users/import"): ("admin", {"ldap_uid_list": ["x"]}),
    ("GET", "ldap/groups/search"): ("admin", None),
    ("GET", "usergroups"): ("admin", None),
    ("POST", "usergroups"): ("admin", {"group_name": "new", "group_type": 2}),
    ("GET", "usergroups/search"): (AUTHENTICATED, None),
    ("GET", "usergroups/<id:gid>"): ("admin", None),
    ("PUT", "usergroups/<id:gid>"): ("admin", {"group_name": "renamed"}),
    ("DELETE", "usergroups/<id:gid>"): ("admin", None),
    ("GET", "berth/identity-providers"): ("admin", None),
    ("POST", "berth/identity-providers"): (
        "admin",
        {"kind": "ldap", "name": "x", "config": {"url": "ldap://x", "base_dn": "dc=x"}},
    ),
    ("POST", "berth/identity-providers/ping"): ("admin", {"kind": "ldap", "config": {}}),
    ("PUT", "berth/identity-providers/order"): ("admin", {"ids": []}),
    ("GET", "berth/identity-providers/<id:pid>"): ("admin", None),
    ("PUT", "berth/identity-providers/<id:pid>"): ("admin", {"enabled": False}),
    ("DELETE", "berth/identity-providers/<id:pid>"): ("admin", None),
    ("POST", "berth/identity-providers/<id:pid>/ping"): ("admin", {}),
    ("GET", "retentions/metadatas"): (AUTHENTICATED, None),
    # The project already has a policy: who may gets a 400, not a refusal.
    ("POST", "retentions"): (
        "dev maint padmin admin",
        {"scope": {"level": "project", "ref": "<project_id>"}},
    ),
    ("GET", "retentions/<id:policy_id>"): ("dev maint padmin admin", None),
    ("PUT", "retentions/<id:policy_id>"): ("dev maint padmin admin", {"rules": []}),
    ("DELETE", "retentions/<id:policy_id>"): ("dev maint padmin admin", None),
    ("GET", "retentions/<id:policy_id>/executions"): ("dev maint padmin admin", None),
    # A run is active: who may gets a 409.
    ("POST", "retentions/<id:policy_id>/executions"): ("dev maint padmin admin", {"dry_run": True}),
    ("PATCH", "retentions/<id:policy_id>/executions/<id:execution_id>"): (
        "dev maint padmin admin",
        {"action": "stop"},
    ),
    ("GET", "retentions/<id:policy_id>/executions/<id:execution_id>/tasks"): (
        "dev maint padmin admin",
        None,
    ),
    ("GET", "retentions/<id:policy_id>/executions/<id:execution_id>/tasks/<id:task_id>"): (
        "dev maint padmin admin",
        None,
    ),
    # Replication (system resources: the sysadmin only; Harbor's matrix).
    ("GET", "registries"): ("admin", None),
    ("POST", "registries"): (
        "admin",
        {"name": "made", "type": "docker-registry", "url": "http://127.0.0.1:9"},
    ),
    ("POST", "registries/ping"): (
        "admin",
        {"type": "docker-registry", "url": "http://127.0.0.1:9"},
    ),
    ("GET", "registries/<id:registry_id>"): ("admin", None),
    ("PUT", "registries/<id:registry_id>"): ("admin", {"description": "x"}),
    ("DELETE", "registries/<id:registry_id>"): ("admin", None),
    ("GET", "registries/<id:registry_id>/info"): ("admin", None),
    ("GET", "replication/adapters"): ("admin", None),
    ("GET", "replication/adapterinfos"): ("admin", None),
    ("GET", "replication/policies"): ("admin", None),
    ("POST", "replication/policies"): (
        "admin",
        {"name": "made", "dest_registry": {"id": "<registry_id>"}},
    ),
    ("GET", "replication/policies/<id:policy_id>"): ("admin", None),
    ("PUT", "replication/policies/<id:policy_id>"): ("admin", {"description": "x"}),
    ("DELETE", "replication/policies/<id:policy_id>"): ("admin", None),
    ("GET", "replication/executions"): ("admin", None),
    ("POST", "replication/executions"): ("admin", {"policy_id": "<policy_id>"}),
    ("GET", "replication/executions/<id:execution_id>"): ("admin", None),
    ("PUT", "replication/executions/<id:execution_id>"): ("admin", None),
    ("GET", "replication/executions/<id:execution_id>/tasks"): ("admin", None),
    ("GET", "replication/executions/<id:execution_id>/tasks/<id:task_id>/log"): ("admin", None),
}
# Any other path is a JSON 404 for everyone.
TABLE.update(
    {(m, "<path:rest>"): ("", None) for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")}
)

METHODS = ("get", "post", "put", "patch", "delete", "head")


def api_routes() -> list[tuple[str, URLPattern]]:
    """(route under /api/v2.0/, pattern) for every route the site serves there,
    whichever app's URL list it comes from."""
    prefix = "api/v2.0/"
    found = []
    for entry in get_resolver().url_patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver) and route == prefix:
            found += [(str(p.pattern), p) for p in entry.url_patterns]
        elif isinstance(entry, URLPattern) and route.startswith(prefix):
            found.append((route.removeprefix(prefix), entry))
    return found


def discovered() -> set[tuple[str, str]]:
    """(method, route) for every handler the API's views define."""
    routes = set()
    for route, pattern in api_routes():
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class
        routes |= {(m.upper(), route) for m in METHODS if hasattr(view, m)}
    return routes


def test_every_route_has_an_entry():
    assert discovered() == set(TABLE)


@pytest.fixture
def world(team, v2):
    InProcess(v2).push_image("team/app", "v1")
    padmin = actor_for_user(User.objects.get(username="padmin"))
    probot, probot_secret = robots.robot_create(
        actor=padmin,
        name="probe",
        level="project",
        duration=-1,
        permissions=[
            {
                "kind": "project",
                "namespace": "team",
                "access": [
                    {"resource": r, "action": a}
                    for r, a in [
                        ("repository", "pull"),
                        ("repository", "push"),
                        ("repository", "list"),
                        ("repository", "read"),
                        ("artifact", "list"),
                        ("artifact", "read"),
                        ("tag", "list"),
                        ("tag", "create"),
                    ]
                ],
            }
        ],
    )
    admin = actor_for_user(User.objects.get(pk=1))
    srobot, srobot_secret = robots.robot_create(
        actor=admin,
        name="sysprobe",
        level="system",
        duration=-1,
        permissions=[
            {
                "kind": "system",
                "namespace": "/",
                "access": [
                    {"resource": r, "action": a}
                    for r, a in [("project", "create"), ("robot", "list"), ("audit-log", "list")]
                ],
            }
        ],
    )
    rule = immutability.rule_create(
        actor=admin,
        project=Project.objects.get(name="team"),
        data={"tag_selectors": [{"pattern": "release-*"}]},
    )
    label = labels.label_create(
        actor=admin, name="team-label", scope="p", project_id=rule.project_id
    )
    labels.artifact_label_add(
        actor=admin,
        repository=Repository.objects.get(name="team/app"),
        reference="v1",
        label_id=label.pk,
    )
    group = UserGroup.objects.create(name="probe-group", type=UserGroup.Type.HTTP)
    provider = IdentityProvider.objects.create(
        kind="ldap", name="probe", enabled=False, config={"url": "ldap://x", "base_dn": "dc=x"}
    )
    dev_token, _ = pats.token_create(
        actor=actor_for_user(User.objects.get(username="dev")),
        name="probe",
        permissions=[
            {
                "kind": "project",
                "namespace": "team",
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    )
    policy = retention.policy_create(
        actor=admin,
        raw={"rules": [], "scope": {"level": "project", "ref": rule.project_id}},
    )
    execution = RetentionExecution.objects.create(policy=policy, dry_run=True)
    task = RetentionTask.objects.create(execution=execution, repository="team/app", log="x\n")
    gc_run = SystemJob.objects.create(kind=SystemJob.Kind.GC, status="Success")
    purge_run = SystemJob.objects.create(kind=SystemJob.Kind.PURGE_AUDIT, status="Success")
    credentials = {
        name: basic(name, PASSWORD)
        for name in ["lguest", "guest", "dev", "maint", "padmin", "outsider"]
    }
    credentials.update(
        admin=basic(*ADMIN),
        probot=basic(probot.name, probot_secret),
        srobot=basic(srobot.name, srobot_secret),
    )
    params = {
        "ref": "team",
        "mid": Member.objects.get(user__username="guest").pk,
        "uid": User.objects.get(username="dev").pk,
        "rid": probot.pk,
        "qid": Member.objects.get(user__username="guest").project_id,
        "repo": "app",
        "reference": "v1",
        "rest": "immutabletagrules/nothing-here",
        "name": "public",
        "tag": "v1",
        "rule_id": rule.pk,
        "label_id": label.pk,
        "project_id": rule.project_id,
        "addition": "build_history",
        "gid": group.pk,
        "pid": provider.pk,
        **replication_world(),
        "tid": dev_token.pk,
        "gc_id": gc_run.pk,
        "purge_id": purge_run.pk,
        # Retention's routes name their ids as replication's do (concrete()).
        "retentions": {
            "policy_id": policy.pk,
            "execution_id": execution.pk,
            "task_id": task.pk,
        },
    }
    return credentials, params


def replication_world() -> dict[str, int]:
    """An endpoint, a push policy to it, an execution with a task."""
    from replication.models import Endpoint, Execution, Policy, Task

    endpoint = Endpoint.objects.create(
        name="dist", url="http://127.0.0.1:9", type="docker-registry"
    )
    policy = Policy.objects.create(name="push", dest_endpoint=endpoint)
    execution = Execution.objects.create(policy=policy)
    task = Task.objects.create(execution=execution, src_repository="a/b", dst_repository="a/b")
    return {
        "registry_id": endpoint.pk,
        "policy_id": policy.pk,
        "execution_id": execution.pk,
        "task_id": task.pk,
    }


def _filled(value: object, params: dict) -> object:
    """A body value naming a fixture row ("<label_id>", {"id": "<registry_id>"})."""
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return params[value[1:-1]]
    if isinstance(value, dict):
        return {k: _filled(v, params) for k, v in value.items()}
    return value


def concrete(route: str, params: dict) -> str:
    path = route
    if route.startswith("retentions"):
        params = {**params, **params["retentions"]}
    for key, value in params.items():
        for kind in ("str", "id", "path"):
            path = path.replace(f"<{kind}:{key}>", str(value))
    query = {
        "projects": "?project_name=team",
        "projects/team/repositories/app/artifacts": "?from=team/app:v1",
        "labels": f"?scope=p&project_id={params['project_id']}",
    }
    return "/api/v2.0/" + path + query.get(path, "")


@pytest.mark.parametrize("key", sorted(TABLE), ids=lambda k: f"{k[0]} {k[1]}")
def test_route_answers_by_role(world, key):
    credentials, params = world
    method, route = key
    allowed, payload = TABLE[key]
    url = concrete(route, params)
    if key == ("POST", "projects/<str:ref>/repositories/<path:repo>/artifacts"):
        url = "/api/v2.0/projects/team/repositories/copy/artifacts?from=team/app:v1"
    outcomes = {}
    for who in PRINCIPALS:
        client = Client(HTTP_AUTHORIZATION=credentials[who]) if who != "anon" else Client()
        with transaction.atomic():
            kwargs = {"content_type": "application/json"}
            if payload is not None:
                # Ids the world fixture made (a label's, the project's, a registry's).
                body = _filled(payload, params)
                kwargs["data"] = json.dumps(body)
            response = getattr(client, method.lower())(url, **kwargs)
            transaction.set_rollback(True)
        outcomes[who] = response.status_code
    expected = {who: who in allowed.split() for who in PRINCIPALS}
    actual = {who: status not in (401, 403, 404) for who, status in outcomes.items()}
    assert actual == expected, outcomes
    assert Robot.objects.count() == 2  # nothing leaked out of the rolled-back calls
