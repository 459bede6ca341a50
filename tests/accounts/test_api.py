"""Harbor's API for projects, members, users and robots, and the authorization
cases C22-C24, C27, C28 and C30."""

from __future__ import annotations

import json

import pytest

from accounts.models import Member, Project, Robot, Role, User
from tests.conftest import RegistryClient, basic
from tests.registry.helpers import InProcess
from tests.roles import PASSWORD, api, token

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def put(client, path, body):
    return client.put(path, data=json.dumps(body), content_type="application/json")


def errors(r) -> str:
    return r.json()["errors"][0]["code"]


# projects ---------------------------------------------------------------------


def test_project_create_list_get_delete(team):
    dev = api("dev")
    r = post(
        dev, "/api/v2.0/projects", {"project_name": "devproj", "metadata": {"public": "false"}}
    )
    assert r.status_code == 201
    project = Project.objects.get(name="devproj")
    assert r["Location"] == f"/api/v2.0/projects/{project.pk}"
    assert Member.objects.get(project=project).role == Role.PROJECT_ADMIN
    r = dev.get("/api/v2.0/projects/devproj")
    body = r.json()
    assert body["name"] == "devproj"
    assert body["metadata"]["public"] == "false"
    assert body["current_user_role_id"] == 1
    assert body["owner_name"] == "dev"
    assert post(dev, "/api/v2.0/projects", {"project_name": "devproj"}).status_code == 409
    r = dev.get("/api/v2.0/projects?page=1&page_size=2")
    assert r["X-Total-Count"] == "4"  # devproj, library (public), pub, team
    assert [p["name"] for p in r.json()] == ["devproj", "library"]
    assert r["Link"] == '</api/v2.0/projects?page=2&page_size=2>; rel="next"'
    assert dev.get("/api/v2.0/projects/devproj/_deletable").json() == {
        "deletable": True,
        "message": "",
    }
    assert dev.delete("/api/v2.0/projects/devproj").status_code == 200
    assert not Project.objects.filter(name="devproj").exists()


def test_project_name_grammar_and_restriction(team, settings):
    for bad in ("Upper", "a/b", "-a", "", "a" * 256):
        assert post(api("dev"), "/api/v2.0/projects", {"project_name": bad}).status_code == 400
    settings.BERTH_PROJECT_CREATION = "adminonly"
    r = post(api("dev"), "/api/v2.0/projects", {"project_name": "nope"})
    assert r.status_code == 403
    assert errors(r) == "FORBIDDEN"
    assert post(api("admin"), "/api/v2.0/projects", {"project_name": "yes"}).status_code == 201
    assert post(api(None), "/api/v2.0/projects", {"project_name": "anon"}).status_code == 401


def test_project_with_repositories_is_not_deletable(team, v2):
    InProcess(v2).push_image("team/app", "v1")
    padmin = api("padmin")
    assert padmin.get("/api/v2.0/projects/team/_deletable").json()["deletable"] is False
    r = padmin.delete("/api/v2.0/projects/team")
    assert r.status_code == 412
    assert errors(r) == "PRECONDITION"
    assert Project.objects.filter(name="team").exists()


def test_private_project_is_invisible_to_outsiders_and_anonymous(team):
    assert api("outsider").get("/api/v2.0/projects/team").status_code == 404
    assert api(None).get("/api/v2.0/projects/team").status_code == 404
    assert api(None).get("/api/v2.0/projects/pub").status_code == 200
    names = [p["name"] for p in api(None).get("/api/v2.0/projects").json()]
    assert names == ["library", "pub"]
    assert api("outsider").head("/api/v2.0/projects?project_name=team").status_code == 404
    assert api("guest").head("/api/v2.0/projects?project_name=team").status_code == 200


def test_project_update_needs_project_admin(team):
    assert (
        put(api("dev"), "/api/v2.0/projects/team", {"metadata": {"public": "true"}}).status_code
        == 403
    )
    assert (
        put(api("padmin"), "/api/v2.0/projects/team", {"metadata": {"public": "true"}}).status_code
        == 200
    )
    assert Project.objects.get(name="team").public is True


def test_project_summary(team):
    body = api("guest").get("/api/v2.0/projects/team/summary").json()
    assert body["repo_count"] == 0
    assert body["developer_count"] == 1
    assert body["project_admin_count"] == 1
    limited = api("lguest").get("/api/v2.0/projects/team/summary").json()
    assert "developer_count" not in limited  # limited guests may not list members


# members --------------------------------------------------------------------------


def test_members_crud_by_project_admin(team):
    padmin = api("padmin")
    r = post(
        padmin,
        "/api/v2.0/projects/team/members",
        {"role_id": 2, "member_user": {"username": "outsider"}},
    )
    assert r.status_code == 201
    mid = int(r["Location"].rsplit("/", 1)[1])
    listed = padmin.get("/api/v2.0/projects/team/members?entityname=outsider").json()
    assert listed == [
        {
            "id": mid,
            "project_id": team.pk,
            "entity_name": "outsider",
            "entity_id": User.objects.get(username="outsider").pk,
            "entity_type": "u",
            "role_id": 2,
            "role_name": "developer",
        }
    ]
    assert put(padmin, f"/api/v2.0/projects/team/members/{mid}", {"role_id": 3}).status_code == 200
    assert Member.objects.get(pk=mid).role == 3
    assert (
        post(
            padmin,
            "/api/v2.0/projects/team/members",
            {"role_id": 9, "member_user": {"username": "outsider"}},
        ).status_code
        == 400
    )
    assert padmin.delete(f"/api/v2.0/projects/team/members/{mid}").status_code == 200


@pytest.mark.parametrize("who", ["maint", "dev", "guest", "lguest", "outsider"])
def test_only_project_admins_change_members(team, who):
    r = post(
        api(who),
        "/api/v2.0/projects/team/members",
        {"role_id": 1, "member_user": {"username": "outsider"}},
    )
    assert r.status_code == (404 if who == "outsider" else 403)
    assert not Member.objects.filter(user__username="outsider").exists()


def test_limited_guest_cannot_list_members(team):
    assert api("guest").get("/api/v2.0/projects/team/members").status_code == 200
    assert api("lguest").get("/api/v2.0/projects/team/members").status_code == 403


# C23: IDOR ------------------------------------------------------------------------


def test_c23_children_of_another_project_through_my_url_are_404(team):
    other = Project.objects.create(name="other", owner_id=1)
    victim = User.objects.create_user("victim", password=PASSWORD)
    their_member = Member.objects.create(project=other, user=victim, role=Role.GUEST)
    padmin = api("padmin")
    url = f"/api/v2.0/projects/team/members/{their_member.pk}"
    assert padmin.get(url).status_code == 404
    assert put(padmin, url, {"role_id": 1}).status_code == 404
    assert padmin.delete(url).status_code == 404
    assert Member.objects.get(pk=their_member.pk).role == Role.GUEST
    # And straight at B's URL: B is invisible to A's admin.
    assert padmin.get(f"/api/v2.0/projects/other/members/{their_member.pk}").status_code == 404


# users (C22) ----------------------------------------------------------------------


def test_user_create_and_policy(team):
    admin = api("admin")
    r = post(admin, "/api/v2.0/users", {"username": "new", "password": "weak", "email": "n@x"})
    assert r.status_code == 400
    r = post(admin, "/api/v2.0/users", {"username": "new", "password": "Strong123", "email": "n@x"})
    assert r.status_code == 201
    assert (
        post(admin, "/api/v2.0/users", {"username": "new", "password": "Strong123"}).status_code
        == 409
    )
    assert (
        post(api("dev"), "/api/v2.0/users", {"username": "x", "password": "Strong123"}).status_code
        == 403
    )


def test_c22_self_registration_cannot_raise_privileges(team, settings):
    settings.BERTH_SELF_REGISTRATION = True
    r = post(
        api(None),
        "/api/v2.0/users",
        {
            "username": "sneaky",
            "password": "Strong123",
            "sysadmin_flag": True,
            "admin": True,
            "role": 1,
            "is_superuser": True,
            "is_staff": True,
        },
    )
    assert r.status_code == 201
    sneaky = User.objects.get(username="sneaky")
    assert not sneaky.is_superuser and not sneaky.is_staff
    assert (
        put(
            api("sneaky", "Strong123"),
            f"/api/v2.0/users/{sneaky.pk}/sysadmin",
            {"sysadmin_flag": True},
        ).status_code
        == 403
    )
    assert not User.objects.get(username="sneaky").is_superuser


def test_self_registration_off_by_default(team):
    assert (
        post(api(None), "/api/v2.0/users", {"username": "x", "password": "Strong123"}).status_code
        == 403
    )


def test_password_change_needs_the_old_password(team):
    dev = User.objects.get(username="dev")
    r = put(
        api("dev"),
        f"/api/v2.0/users/{dev.pk}/password",
        {"old_password": "Wrong1234", "new_password": "Newpass123"},
    )
    assert r.status_code == 400
    r = put(
        api("dev"),
        f"/api/v2.0/users/{dev.pk}/password",
        {"old_password": PASSWORD, "new_password": "Newpass123"},
    )
    assert r.status_code == 200
    other = User.objects.get(username="guest")
    r = put(
        api("dev", "Newpass123"),
        f"/api/v2.0/users/{other.pk}/password",
        {"old_password": PASSWORD, "new_password": "Hijack123"},
    )
    assert r.status_code == 403
    r = put(api("admin"), f"/api/v2.0/users/{other.pk}/password", {"new_password": "Reset1234"})
    assert r.status_code == 200


def test_current_user_and_listing(team):
    assert api("dev").get("/api/v2.0/users/current").json()["username"] == "dev"
    assert api(None).get("/api/v2.0/users/current").status_code == 401
    assert api("dev").get("/api/v2.0/users").status_code == 403
    r = api("admin").get("/api/v2.0/users?q=username=~gu")
    assert [u["username"] for u in r.json()] == ["guest", "lguest"]


# C30 ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["password=x", "salt=~a", "password_version=1", "is_superuser=true"])
def test_c30_only_documented_fields_filter(team, q):
    r = api("admin").get(f"/api/v2.0/users?q={q}")
    assert r.status_code == 400
    assert errors(r) == "BAD_REQUEST"
    assert "password" not in r.json()["errors"][0]["message"].replace(q.split("=")[0], "")


def test_c30_sort_on_undocumented_field_refused(team):
    assert api("admin").get("/api/v2.0/users?sort=password").status_code == 400


# robots (C24) ---------------------------------------------------------------------


def robot_body(name, namespace, *access, level="project", kind="project"):
    return {
        "name": name,
        "level": level,
        "duration": 30,
        "permissions": [
            {
                "kind": kind,
                "namespace": namespace,
                "access": [{"resource": r, "action": a} for r, a in access],
            }
        ],
    }


def test_project_robot_pushes_with_docker_style_login(team):
    r = post(
        api("padmin"),
        "/api/v2.0/robots",
        robot_body("ci", "team", ("repository", "pull"), ("repository", "push")),
    )
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "robot$team+ci"
    assert body["expires_at"] > 0
    robot = Robot.objects.get(name="robot$team+ci")
    assert robot.secret_hash != body["secret"] and body["secret"] not in robot.secret_hash
    reg = RegistryClient(HTTP_AUTHORIZATION=basic(body["name"], body["secret"]))
    assert reg.post("/v2/team/app/blobs/uploads/").status_code == 202
    assert reg.post("/v2/pub/app/blobs/uploads/").status_code == 403
    refreshed = (
        api("padmin")
        .patch(f"/api/v2.0/robots/{robot.pk}", data="{}", content_type="application/json")
        .json()["secret"]
    )
    assert (
        RegistryClient(HTTP_AUTHORIZATION=basic(body["name"], body["secret"]))
        .get("/v2/")
        .status_code
        == 401
    )
    assert (
        RegistryClient(HTTP_AUTHORIZATION=basic(body["name"], refreshed)).get("/v2/").status_code
        == 200
    )


def test_c24_robot_never_exceeds_its_creator(team):
    # A developer may not create robots at all; a project admin only in its project.
    assert (
        post(
            api("dev"), "/api/v2.0/robots", robot_body("x", "team", ("repository", "pull"))
        ).status_code
        == 403
    )
    assert (
        post(
            api("padmin"), "/api/v2.0/robots", robot_body("x", "pub", ("repository", "push"))
        ).status_code
        == 403
    )
    assert (
        post(
            api("padmin"),
            "/api/v2.0/robots",
            robot_body("x", "/", ("project", "create"), level="system", kind="system"),
        ).status_code
        == 403
    )
    other = Project.objects.create(name="hidden", owner_id=1)
    r = post(api("padmin"), "/api/v2.0/robots", robot_body("x", other.name, ("repository", "pull")))
    assert r.status_code == 404
    assert not Robot.objects.exists()


def test_c24_robot_creating_robots_stays_within_its_own_grants(team):
    r = post(
        api("admin"),
        "/api/v2.0/robots",
        robot_body(
            "maker", "/", ("robot", "create"), ("project", "create"), level="system", kind="system"
        ),
    )
    assert r.status_code == 201
    maker = api(r.json()["name"], r.json()["secret"])
    r = post(
        maker,
        "/api/v2.0/robots",
        robot_body("child", "/", ("user", "create"), level="system", kind="system"),
    )
    assert r.status_code == 403
    r = post(
        maker,
        "/api/v2.0/robots",
        robot_body("child", "/", ("project", "create"), level="system", kind="system"),
    )
    assert r.status_code == 201
    # Only system robots granted project:create may create projects.
    assert post(maker, "/api/v2.0/projects", {"project_name": "byrobot"}).status_code == 201


def test_disabled_and_expired_robots_are_refused(team):
    r = post(api("padmin"), "/api/v2.0/robots", robot_body("r1", "team", ("repository", "pull")))
    name, secret, rid = r.json()["name"], r.json()["secret"], r.json()["id"]
    assert put(api("padmin"), f"/api/v2.0/robots/{rid}", {"disable": True}).status_code == 200
    assert api(name, secret).get("/service/token?service=harbor-registry").status_code == 401
    Robot.objects.filter(pk=rid).update(disabled=False, expires_at="2000-01-01T00:00:00Z")
    assert api(name, secret).get("/service/token?service=harbor-registry").status_code == 401


def test_robot_of_another_project_is_404(team):
    other = Project.objects.create(name="other", owner_id=1)
    r = post(
        api("admin"), "/api/v2.0/robots", robot_body("theirs", other.name, ("repository", "pull"))
    )
    rid = r.json()["id"]
    assert api("padmin").get(f"/api/v2.0/robots/{rid}").status_code == 404
    assert api("padmin").delete(f"/api/v2.0/robots/{rid}").status_code == 404
    assert Robot.objects.filter(pk=rid).exists()


# C27, C28 -------------------------------------------------------------------------


def test_c27_mount_of_unreadable_blob_falls_back_to_upload(team, v2):
    InProcess(v2).push_image("team/secret", "v1")
    layer = json.loads(v2.get("/v2/team/secret/manifests/v1").content)["layers"][0]["digest"]
    Project.objects.create(name="mine", owner_id=1)
    outsider = User.objects.get(username="outsider")
    Member.objects.create(project=Project.objects.get(name="mine"), user=outsider, role=1)
    t = token("outsider", "repository:mine/app:pull,push", "repository:team/secret:pull")["token"]
    reg = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {t}")
    r = reg.post(f"/v2/mine/app/blobs/uploads/?mount={layer}&from=team/secret")
    assert r.status_code == 202
    r = reg.post(f"/v2/mine/app/blobs/uploads/?mount={layer}")
    assert r.status_code == 202
    assert reg.head(f"/v2/mine/app/blobs/{layer}").status_code == 404


def test_c28_anonymous_catalog_shows_only_public(team, v2):
    reg = InProcess(v2)
    reg.push_image("team/private-app", "v1")
    reg.push_image("pub/public-app", "v1")
    anon = token(None, "registry:catalog:*")["token"]
    r = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {anon}").get("/v2/_catalog")
    assert r.json()["repositories"] == ["pub/public-app"]
    guest = token("guest", "registry:catalog:*")["token"]
    r = RegistryClient(HTTP_AUTHORIZATION=f"Bearer {guest}").get("/v2/_catalog")
    assert r.json()["repositories"] == ["pub/public-app", "team/private-app"]


# system endpoints -------------------------------------------------------------------


def test_health_ping_systeminfo(team):
    assert api(None).get("/api/v2.0/ping").content == b"Pong"
    health = api(None).get("/api/v2.0/health").json()
    assert health["status"] == "healthy"
    info = api(None).get("/api/v2.0/systeminfo").json()
    assert info["auth_mode"] == "db_auth"
    assert info["self_registration"] is False


def test_browser_login_sets_sid_and_csrf_protects_writes(team):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    r = browser.post("/c/login", {"principal": "padmin", "password": PASSWORD})
    assert r.status_code == 200
    assert "sid" in browser.cookies
    assert browser.cookies["sid"]["httponly"]
    assert browser.get("/api/v2.0/users/current").json()["username"] == "padmin"
    r = browser.post(
        "/api/v2.0/projects",
        data=json.dumps({"project_name": "viaweb"}),
        content_type="application/json",
    )
    assert r.status_code == 403  # no CSRF token
    browser.get("/api/v2.0/systeminfo")
    csrf = browser.cookies.get("__csrf")
    assert csrf is not None
    r = browser.post(
        "/api/v2.0/projects",
        data=json.dumps({"project_name": "viaweb"}),
        content_type="application/json",
        HTTP_X_HARBOR_CSRF_TOKEN=csrf.value,
    )
    assert r.status_code == 201
    assert browser.get("/c/log_out").status_code == 200
    assert browser.get("/api/v2.0/users/current").status_code == 401
    assert api("padmin", "nope").post("/c/login").status_code in (401, 405)


# overviews --------------------------------------------------------------------------


def test_statistics_and_search_show_only_what_the_caller_may_see(team, v2):
    reg = InProcess(v2)
    reg.push_image("team/hidden-app", "v1")
    reg.push_image("pub/shown-app", "v1")
    anon = api(None).get("/api/v2.0/statistics").json()
    assert anon["public_repo_count"] == 1 and anon["private_repo_count"] == 0
    assert "total_storage_consumption" not in anon
    assert api("guest").get("/api/v2.0/statistics").json()["private_repo_count"] == 1
    assert api("admin").get("/api/v2.0/statistics").json()["total_storage_consumption"] > 0
    found = api(None).get("/api/v2.0/search?q=app").json()
    assert [r["repository_name"] for r in found["repository"]] == ["pub/shown-app"]
    found = api("guest").get("/api/v2.0/search?q=app").json()
    assert [r["repository_name"] for r in found["repository"]] == [
        "pub/shown-app",
        "team/hidden-app",
    ]


def test_quota_usage_counts_each_blob_once_per_project(team, v2):
    reg = InProcess(v2)
    layer = b"x" * 5000
    one, body = reg.push_image("team/one", "v1", config=b'{"a":1}', layers=[layer])
    two, _ = reg.push_image("team/two", "v1", config=b'{"a":1}', layers=[layer])
    assert one == two  # the same manifest in both: its bytes count once too, as in Harbor
    team_id = Project.objects.get(name="team").pk
    quota = api("guest").get(f"/api/v2.0/quotas/{team_id}").json()
    assert quota["used"]["storage"] == 5000 + len(b'{"a":1}') + len(body)
    assert quota["hard"]["storage"] == -1
    listed = api("admin").get("/api/v2.0/quotas?page_size=50").json()
    assert {q["ref"]["name"]: q["used"]["storage"] for q in listed}["team"] == 5007 + len(body)


def test_current_user_permissions(team):
    team_id = Project.objects.get(name="team").pk
    mine = (
        api("dev")
        .get(f"/api/v2.0/users/current/permissions?scope=/project/{team_id}&relative=true")
        .json()
    )
    assert {"resource": "repository", "action": "push"} in mine
    assert {"resource": "repository", "action": "delete"} not in mine
    assert api("dev").get("/api/v2.0/users/current/permissions?scope=/").json() == []
    admin = api("admin").get("/api/v2.0/users/current/permissions?scope=/").json()
    assert {"resource": "/user", "action": "create"} in admin


def test_configurations_and_permission_pool(team):
    config = api("admin").get("/api/v2.0/configurations").json()
    assert config["self_registration"] == {"value": False, "editable": True}
    pool = api("padmin").get("/api/v2.0/permissions").json()
    assert {"resource": "repository", "action": "pull"} in pool["project"]
    assert "system" not in pool
    assert "system" in api("admin").get("/api/v2.0/permissions").json()


def test_openapi_document_describes_every_route(team):
    from accounts.api import urls as access_urls
    from registry.api import urls as content_urls
    from replication.api import urls as replication_urls

    r = api(None).get("/api/v2.0/openapi.json", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    patterns = [
        *access_urls.urlpatterns,
        *content_urls.urlpatterns,
        *replication_urls.urlpatterns,
    ]
    routes = {str(p.pattern) for p in patterns} - {"openapi.json"}
    assert len(paths) == len(routes) + 1  # and Harbor's JSON 404 for any other path
    assert "/api/v2.0/{rest}" in paths
    assert "/api/v2.0/projects/{ref}/members/{mid}" in paths
    assert set(paths["/api/v2.0/robots/{rid}"]) == {"get", "put", "patch", "delete"}


# what harbor-cli (go-client v0.213) sends, replayed -----------------------------------


def test_zero_page_and_page_size_mean_defaults(team):
    r = api("admin").get("/api/v2.0/projects?page=0&page_size=0")
    assert r.status_code == 200
    assert [p["name"] for p in r.json()] == ["library", "pub", "team"]
    assert api("admin").get("/api/v2.0/robots?page=0&page_size=0").status_code == 200
    assert api("admin").get("/api/v2.0/projects?page=-1").status_code == 400


def test_configurations_carry_the_robot_name_prefix(team):
    config = api("admin").get("/api/v2.0/configurations").json()
    assert config["robot_name_prefix"]["value"] == "robot$"


def test_auditlog_exts(team):
    from audit.services import flush

    post(
        api("padmin"),
        "/api/v2.0/projects/team/members",
        {"role_id": 2, "member_user": {"username": "outsider"}},
    )
    flush()
    ext = api("padmin").get("/api/v2.0/projects/team/auditlog-exts").json()
    assert ext[0]["operation_result"] is True
    assert ext[0]["operation_description"] == "create member outsider"
    assert set(ext[0]) == {
        "id",
        "username",
        "resource",
        "resource_type",
        "operation",
        "operation_description",
        "operation_result",
        "op_time",
    }
    assert api("admin").get("/api/v2.0/auditlog-exts").json()[0]["resource"] == "outsider"


def test_unknown_api_paths_are_json_404(team):
    for method in ("get", "post", "delete"):
        r = getattr(api("admin"), method)("/api/v2.0/projects/team/retentions/nothing")
        assert r.status_code == 404
        assert r.json()["errors"][0]["code"] == "NOT_FOUND"


def test_project_metadatas(team):
    padmin = api("padmin")
    base = "/api/v2.0/projects/team/metadatas"
    assert padmin.get(base).json() == {"public": "false"}
    assert post(padmin, base, {"auto_scan": "true"}).status_code == 200
    assert padmin.get(f"{base}/auto_scan").json() == {"auto_scan": "true"}
    assert put(padmin, f"{base}/public", {"public": "true"}).status_code == 200
    assert Project.objects.get(name="team").public is True
    assert put(padmin, f"{base}/public", {"auto_scan": "x"}).status_code == 400
    assert post(padmin, base, {"password": "x"}).status_code == 400
    assert padmin.delete(f"{base}/auto_scan").status_code == 200
    assert padmin.get(f"{base}/auto_scan").status_code == 404
    assert padmin.delete(f"{base}/public").status_code == 400
    assert api("maint").get(base).status_code == 200
    assert post(api("maint"), base, {"auto_scan": "true"}).status_code == 403
    assert api("dev").get(base).status_code == 403


def test_configurations_update_runtime_settings(team):
    admin = api("admin")
    assert (
        post(api(None), "/api/v2.0/users", {"username": "x1", "password": "Strong123"}).status_code
        == 403
    )
    r = put(
        admin,
        "/api/v2.0/configurations",
        {"self_registration": True, "project_creation_restriction": "adminonly"},
    )
    assert r.status_code == 200
    config = admin.get("/api/v2.0/configurations").json()
    assert config["self_registration"] == {"value": True, "editable": True}
    assert api(None).get("/api/v2.0/systeminfo").json()["self_registration"] is True
    assert (
        post(api(None), "/api/v2.0/users", {"username": "x1", "password": "Strong123"}).status_code
        == 201
    )
    assert post(api("dev"), "/api/v2.0/projects", {"project_name": "nope"}).status_code == 403
    # Harbor's other keys are accepted and ignored; unknown keys and wrong types are not.
    assert put(admin, "/api/v2.0/configurations", {"token_expiration": 5}).status_code == 200
    config = admin.get("/api/v2.0/configurations").json()
    assert config["token_expiration"] == {"value": 30, "editable": False}
    assert put(admin, "/api/v2.0/configurations", {"token_expiration": "5"}).status_code == 400
    assert put(admin, "/api/v2.0/configurations", {"no_such_key": 1}).status_code == 400
    assert put(admin, "/api/v2.0/configurations", {"self_registration": "yes"}).status_code == 400
    assert (
        put(api("padmin"), "/api/v2.0/configurations", {"self_registration": False}).status_code
        == 403
    )


def test_settings_in_the_admin(team):
    from django.test import Client

    from accounts.models import SystemSetting
    from tests.conftest import ADMIN

    browser = Client()
    browser.post("/admin/login/", {"username": ADMIN[0], "password": ADMIN[1], "next": "/admin/"})
    r = browser.post(
        "/admin/accounts/systemsetting/add/",
        {"key": "project_creation_restriction", "value": '"adminonly"'},
    )
    assert r.status_code == 302
    assert SystemSetting.objects.get(key="project_creation_restriction").value == "adminonly"
    r = browser.post(
        "/admin/accounts/systemsetting/add/", {"key": "self_registration", "value": '"maybe"'}
    )
    assert r.status_code == 200  # the form shows the service's refusal
    assert b"self_registration must be true or false" in r.content
    padmin = Client()
    padmin.post("/admin/login/", {"username": "padmin", "password": PASSWORD, "next": "/admin/"})
    assert padmin.get("/admin/accounts/systemsetting/").status_code in (302, 403)


def test_an_empty_oidc_endpoint_means_no_oidc_provider(team):
    """Harbor's clients send oidc_* keys whatever the auth mode (harborapi and
    the go client: oidc_verify_cert alone; Harbor's portal: every key, empty)."""
    from accounts import oidc

    admin = api("admin")
    every_key_empty = {
        "auth_mode": "db_auth",
        "oidc_name": "",
        "oidc_endpoint": "",
        "oidc_client_id": "",
        "oidc_client_secret": "",
        "oidc_scope": "",
        "oidc_verify_cert": True,
        "oidc_groups_claim": "",
        "oidc_admin_group": "",
        "oidc_user_claim": "",
        "oidc_auto_onboard": False,
        "self_registration": False,
    }
    assert put(admin, "/api/v2.0/configurations", every_key_empty).status_code == 200
    assert put(admin, "/api/v2.0/configurations", {"oidc_verify_cert": True}).status_code == 200
    assert oidc.primary() is None
    r = put(admin, "/api/v2.0/configurations", {"auth_mode": "oidc_auth", "oidc_endpoint": ""})
    assert r.status_code == 400
    assert "oidc_endpoint is required" in r.json()["errors"][0]["message"]
    assert oidc.primary() is None

    configured = {
        "oidc_endpoint": "https://idp.example.com/realms/corp",
        "oidc_client_id": "berth",
        "oidc_verify_cert": True,
    }
    assert put(admin, "/api/v2.0/configurations", configured).status_code == 200
    # The same full PUT keeps the provider's issuer and takes the other keys.
    every_key_empty["oidc_verify_cert"] = False
    every_key_empty["oidc_client_id"] = "berth"
    every_key_empty["oidc_scope"] = "openid"
    every_key_empty["oidc_user_claim"] = "preferred_username"
    every_key_empty["oidc_groups_claim"] = "groups"
    assert put(admin, "/api/v2.0/configurations", every_key_empty).status_code == 200
    provider = oidc.primary()
    assert provider is not None and not provider.enabled
    assert provider.config["issuer"] == "https://idp.example.com/realms/corp"
    assert provider.config["verify_cert"] is False
