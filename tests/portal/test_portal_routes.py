"""Every page of the portal (the site's own and the admin's), opened by each of
the ten principals of the API's route table: who sees it, and who may change
there. The pages come from the URL configuration: a new page without an entry
here fails this test."""

from __future__ import annotations

import base64

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.adminsite import site
from accounts.models import IdentityProvider, Member, Project, SystemSetting, User, UserGroup
from audit.models import AuditEvent
from registry.models import Blob, Manifest, Repository, ScheduledRun, SystemJob, Tag
from tests.accounts.test_route_table import PRINCIPALS
from tests.roles import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

ROBOTS = "probot srobot"  # robots have no browser session: they are visitors here
VISITORS = f"anon {ROBOTS}"
SIGNED_IN = "lguest guest dev maint padmin outsider admin"
TEAM = "lguest guest dev maint padmin admin"  # those who see the private project `team`
EVERYONE = " ".join(PRINCIPALS)

# Routes that are not the portal's pages: the registry protocol, the API (its
# own route table), the token service, Harbor's browser login, the probes.
# Protocol endpoints, not pages: the SSO redirects and callbacks (and the
# onboarding step, which only a sign-in in progress reaches) are tested in tests/sso/.
NOT_PAGES = (
    "v2/",
    "^v2/",
    "api/v2.0/",
    "service/token",
    "c/login",
    "c/log_out",
    "c/oidc/",
    "c/cas/",
    "c/sso/",
)
NOT_PAGES_EXACT = {"livez", "readyz"}


def model_pages(model: str, *, see: str, add: str, view: str, save: str, delete: str) -> dict:
    """The five pages of a model admin: list, add, an object (seen; saved), its
    deletion and its history (as its page)."""
    base = f"admin/{model}/"
    return {
        base: (see, ""),
        f"{base}add/": (add, add),
        f"{base}<path:object_id>/change/": (view, save),
        f"{base}<path:object_id>/delete/": (delete, ""),
        f"{base}<path:object_id>/history/": (view, ""),
        f"{base}<path:object_id>/": ("", ""),  # Django's redirect to the change page
    }


# route -> (who gets the page (200), who may save there (the page has a Save button))
TABLE: dict[str, tuple[str, str]] = {
    "": (EVERYONE, ""),  # sign-in for visitors, the dashboard for users
    "search/": (SIGNED_IN, ""),
    "tokens/": (SIGNED_IN, SIGNED_IN),  # my tokens: every user makes their own
    "register/": ("", ""),  # self-registration is off here (tests/portal/test_register.py)
    "devcenter-api-2.0": (EVERYONE, ""),  # Swagger UI of the API, as Harbor's
    "i18n/setlang/": ("", ""),  # a POST that redirects
    "admin": ("", ""),  # redirects to admin/
    "admin/": (SIGNED_IN, ""),
    "admin/login/": (VISITORS, ""),  # users are sent on to the index
    "admin/logout/": ("", ""),  # POST only
    "admin/password_change/": (SIGNED_IN, ""),
    "admin/password_change/done/": (SIGNED_IN, ""),
    "admin/autocomplete/": ("", ""),  # no model admin offers autocomplete
    "admin/jsi18n/": (SIGNED_IN, ""),
    "admin/r/<path:content_type_id>/<path:object_id>/": ("", ""),  # no model has a URL
    "admin/(?P<url>.*)$": ("", ""),  # the admin's catch-all: unknown pages
    "admin/accounts/": (SIGNED_IN, ""),
    "admin/registry/": (SIGNED_IN, ""),
    "admin/audit/": ("padmin admin", ""),
    "admin/replication/": ("admin", ""),
    "admin/accounts/user/<id>/password/": ("admin", ""),
    # A project as tabs (the private project `team`); limited guests do not list members.
    "projects/<int:project_id>/": (TEAM, ""),
    "projects/<int:project_id>/repositories/": (TEAM, ""),
    "projects/<int:project_id>/members/": ("guest dev maint padmin admin", "padmin admin"),
    "projects/<int:project_id>/robots/": ("guest dev maint padmin admin", "padmin admin"),
    "projects/<int:project_id>/immutable-rules/": ("maint padmin admin", ""),
    "projects/<int:project_id>/logs/": ("padmin admin", ""),
    **model_pages(
        "accounts/member",
        see="guest dev maint padmin admin",
        add="padmin admin",
        view="guest dev maint padmin admin",
        save="padmin admin",
        delete="padmin admin",
    ),
    **model_pages(
        "accounts/robot",
        see="guest dev maint padmin admin",
        add="padmin admin",
        view="guest dev maint padmin admin",
        save="padmin admin",
        delete="padmin admin",
    ),
    **model_pages(
        "accounts/user", see="admin", add="admin", view="admin", save="admin", delete="admin"
    ),
    **model_pages(
        "accounts/personalaccesstoken", see="admin", add="", view="admin", save="", delete=""
    ),
    **model_pages(
        "accounts/systemsetting", see="admin", add="admin", view="admin", save="admin", delete=""
    ),
    **model_pages(
        "accounts/identityprovider",
        see="admin",
        add="admin",
        view="admin",
        save="admin",
        delete="admin",
    ),
    **model_pages(
        "accounts/usergroup", see="admin", add="admin", view="admin", save="admin", delete="admin"
    ),
    **model_pages(
        "accounts/project",
        see=SIGNED_IN,
        add=SIGNED_IN,
        view=TEAM,
        save="padmin admin",
        delete="padmin admin",
    ),
    **model_pages(
        "audit/auditevent", see="padmin admin", add="", view="padmin admin", save="", delete=""
    ),
    **model_pages(
        "registry/repository",
        see=SIGNED_IN,
        add="",
        view=TEAM,
        save="",
        delete="maint padmin admin",
    ),
    **model_pages(
        "registry/manifest", see=SIGNED_IN, add="", view=TEAM, save="", delete="maint padmin admin"
    ),
    # Add a tag to an artifact: a POST that redirects to the artifact's page.
    "admin/registry/manifest/<path:object_id>/tags/": ("", ""),
    **model_pages(
        "registry/tag", see=SIGNED_IN, add="", view=TEAM, save="", delete="maint padmin admin"
    ),
    **model_pages("registry/blob", see="admin", add="", view="admin", save="", delete=""),
    **model_pages("registry/scheduledrun", see="admin", add="", view="admin", save="", delete=""),
    **model_pages("registry/projectstorage", see=TEAM, add="", view=TEAM, save="admin", delete=""),
    **model_pages(
        "registry/retentionpolicy",
        see="dev maint padmin admin",
        add="",
        view="dev maint padmin admin",
        save="",
        delete="",
    ),
    **model_pages(
        "registry/retentionexecution",
        see="dev maint padmin admin",
        add="",
        view="dev maint padmin admin",
        save="",
        delete="",
    ),
    **model_pages("registry/systemjob", see="admin", add="", view="admin", save="", delete=""),
    # The run and stop buttons' targets answer POST only.
    "admin/registry/systemjob/run/": ("", ""),
    "admin/registry/systemjob/<int:job_id>/stop/": ("", ""),
    # Live status (JSON) of runs: the sysadmin's, as the pages.
    "admin/registry/systemjob/live/": ("admin", ""),
    "admin/registry/systemjob/<path:object_id>/live/": ("admin", ""),
    **model_pages(
        "registry/immutablerule",
        see="maint padmin admin",
        add="maint padmin admin",
        view="maint padmin admin",
        save="maint padmin admin",
        delete="maint padmin admin",
    ),
    # Replication: the sysadmin's; executions and tasks are written by the runner.
    **model_pages(
        "replication/endpoint", see="admin", add="admin", view="admin", save="admin", delete="admin"
    ),
    **model_pages(
        "replication/policy", see="admin", add="admin", view="admin", save="admin", delete="admin"
    ),
    **model_pages("replication/execution", see="admin", add="", view="admin", save="", delete=""),
    **model_pages("replication/task", see="admin", add="", view="admin", save="", delete=""),
    "admin/replication/execution/live/": ("admin", ""),
    "admin/replication/execution/<path:object_id>/live/": ("admin", ""),
}


def _routes(patterns: list, prefix: str = "") -> list[str]:
    found = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


def discovered() -> set[str]:
    """Every page route the site serves, the admin's app pages one per app."""
    routes = set()
    for route in _routes(get_resolver().url_patterns):
        if route.startswith(NOT_PAGES) or route in NOT_PAGES_EXACT:
            continue
        if "(?P<app_label>" in route:  # the admin's app index: one page per app
            routes |= {f"admin/{label}/" for label in {m._meta.app_label for m in site._registry}}
            continue
        routes.add(route)
    return routes


def test_every_page_has_an_entry():
    assert discovered() == set(TABLE)


@pytest.fixture
def objects(world):
    """An object of every admin in the private project `team`: the API route
    table's world (`team/app:v1`, a project and a system robot, a rule) and
    the rows it lacks."""
    credentials, params = world
    team = Project.objects.get(name="team")
    secrets = {
        who: tuple(base64.b64decode(credentials[who].split()[1]).decode().split(":", 1))
        for who in ("probot", "srobot")
    }
    SystemSetting.objects.create(key="self_registration", value=False)
    event = AuditEvent.objects.filter(project_id=team.pk).first()
    run = ScheduledRun.objects.create(name="probe", period=1, task_id="t")
    job = SystemJob.objects.create(kind="gc", status="Success")
    manifest = Manifest.objects.get(repository__name="team/app")
    ids = {
        "accounts/member": Member.objects.get(project=team, user__username="guest").pk,
        "accounts/robot": params["rid"],
        "accounts/user": User.objects.get(username="dev").pk,
        "accounts/systemsetting": "self_registration",
        "accounts/identityprovider": IdentityProvider.objects.get(name="probe").pk,
        "accounts/usergroup": UserGroup.objects.get(name="probe-group").pk,
        "accounts/personalaccesstoken": params["tid"],
        "accounts/project": team.pk,
        "audit/auditevent": event.pk,
        "registry/repository": Repository.objects.get(name="team/app").pk,
        "registry/manifest": manifest.pk,
        "registry/tag": Tag.objects.get(repository__name="team/app", name="v1").pk,
        "registry/blob": Blob.objects.first().pk,
        "registry/scheduledrun": run.pk,
        "registry/systemjob": job.pk,
        "registry/immutablerule": params["rule_id"],
        "registry/projectstorage": team.pk,
        "registry/retentionpolicy": params["retentions"]["policy_id"],
        "registry/retentionexecution": params["retentions"]["execution_id"],
        "replication/endpoint": params["registry_id"],
        "replication/policy": params["policy_id"],
        "replication/execution": params["execution_id"],
        "replication/task": params["task_id"],
    }
    return ids, secrets


def concrete(route: str, ids: dict) -> str:
    path = route
    for model, pk in ids.items():
        if path.startswith(f"admin/{model}/"):
            path = path.replace("<path:object_id>", str(pk))
    team = Project.objects.get(name="team")
    path = path.replace("<id>", str(ids["accounts/user"]))
    path = path.replace(
        "<path:content_type_id>", str(ContentType.objects.get_for_model(Project).pk)
    )
    path = path.replace("<path:object_id>", str(team.pk))
    path = path.replace("<int:project_id>", str(team.pk))
    path = path.replace("<int:job_id>", str(ids["registry/systemjob"]))
    return "/" + path


def browser_of(who: str, secrets: dict) -> Client:
    """A browser signed in as ``who`` (robots try, and stay visitors)."""
    client = Client()
    if who == "admin":
        client.force_login(User.objects.get(pk=1))
    elif who in secrets:
        name, secret = secrets[who]
        r = client.post("/", {"username": name, "password": secret})
        assert r.status_code == 200  # the form again: robots have no browser session
        assert "_auth_user_id" not in client.session
    elif who != "anon":
        r = client.post("/", {"username": who, "password": PASSWORD})
        assert r.status_code == 302, who
    return client


def test_each_principal_sees_and_changes_what_harbor_allows(objects):
    ids, secrets = objects
    clients = {who: browser_of(who, secrets) for who in PRINCIPALS}
    mismatches = {}
    for route, (see, save) in sorted(TABLE.items()):
        url = concrete(route, ids)
        seen, saved = set(), set()
        for who, client in clients.items():
            r = client.get(url)
            if r.status_code == 200:
                seen.add(who)
                if 'name="_save"' in r.content.decode():
                    saved.add(who)
        if (seen, saved) != (set(see.split()), set(save.split())):
            mismatches[url] = {"sees": sorted(seen), "saves": sorted(saved)}
    assert mismatches == {}
