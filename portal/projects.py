"""A project as tabs: summary, repositories, members, robot accounts, immutable
tag rules and logs (docs/portal.md). Admin views (``site.admin_view``: the
admin's sign-in, header and language switch) calling the same services as the
API; a tab is shown, and answers, only where the policy module lets the user
list what it shows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy

from accounts import access, identity
from accounts.access import Actor
from accounts.admin import NamespaceField, robot_permissions, shown_secret
from accounts.adminsite import SERVICE_ERRORS, LargeTablePaginator, count_of, refusal, site
from accounts.models import Member, Project, Robot, Role, User, UserGroup
from accounts.rbac import SERVED_PROJECT_RESOURCES
from accounts.services.projects import (
    member_add,
    member_add_group,
    member_list,
    member_remove,
    member_update,
    project_summary,
)
from accounts.services.robots import (
    robot_create,
    robot_refresh_secret,
    robot_update,
    robots_visible,
)
from audit.models import AuditEvent
from portal.views import ROLE_NAMES
from registry.models import Manifest, Repository
from registry.services.immutability import rule_list

LOG_ROWS = 100
REPOSITORY_ROWS = 50
USER_CHOICES = 200  # the add-member datalist; the name may be typed past it

# tab → (its title, the resource:action the user needs in the project to see it)
TABS: dict[str, tuple[Any, str, str]] = {
    "summary": (gettext_lazy("Summary"), "project", "read"),
    "repositories": (gettext_lazy("Repositories"), "repository", "list"),
    "members": (gettext_lazy("Members"), "member", "list"),
    "robots": (gettext_lazy("Robot accounts"), "robot", "list"),
    "immutable-rules": (gettext_lazy("Immutable tag rules"), "immutable-tag", "list"),
    "logs": (gettext_lazy("Logs"), "log", "list"),
}


def _project(actor: Actor, project_id: int) -> Project:
    """The project, if the actor may know it exists (else 404, as the API)."""
    project = access.visible_projects(actor).filter(pk=project_id).first()
    if project is None or not access.can(actor, "project", "read", project):
        raise Http404
    return project


# members ------------------------------------------------------------------------


class MemberForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("User"), max_length=255)
    role = forms.TypedChoiceField(
        label=gettext_lazy("Role"), coerce=int, choices=list(ROLE_NAMES.items())
    )


class GroupMemberForm(forms.Form):
    group = forms.TypedChoiceField(label=gettext_lazy("Group"), coerce=int)
    role = forms.TypedChoiceField(
        label=gettext_lazy("Role"), coerce=int, choices=list(ROLE_NAMES.items())
    )

    def __init__(self, *args: Any, groups: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_group_%s")  # the add-user form has its own "role"
        super().__init__(*args, **kwargs)
        field = self.fields["group"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = groups


def _group_choices(project: Project) -> list[tuple[int, str]]:
    """The user groups (LDAP, HTTP, OIDC) not yet members, for the add-group
    form: groups come from the directory, sign-ins and the API (docs/identity.md)."""
    kinds = dict(UserGroup.Type.choices)
    rows = (
        UserGroup.objects.exclude(
            pk__in=Member.objects.filter(project=project, group__isnull=False).values("group_id")
        )
        .order_by("name", "pk")
        .values_list("pk", "name", "type")[:USER_CHOICES]
    )
    return [(pk, f"{name} ({kinds.get(kind, kind)})") for pk, name, kind in rows]


class RoleForm(forms.Form):
    member = forms.IntegerField()
    role = forms.TypedChoiceField(coerce=int, choices=list(ROLE_NAMES.items()), required=False)


def _members(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    may_change = access.can(actor, "member", "update", project)
    form = MemberForm()
    groups = _group_choices(project) if may_change else []
    group_form = GroupMemberForm(groups=groups)
    if request.method == "POST" and may_change:
        action = request.POST.get("action")
        try:
            with transaction.atomic():
                if action == "add":
                    form = MemberForm(request.POST)
                    if form.is_valid():
                        data = form.cleaned_data
                        member_add(
                            actor=actor,
                            project=project,
                            user_id=None,
                            username=data["username"],
                            role_id=data["role"],
                        )
                        access.forget_roles()
                        return {"redirect": True}
                elif action == "add_group":
                    group_form = GroupMemberForm(request.POST, groups=groups)
                    if group_form.is_valid():
                        data = group_form.cleaned_data
                        member_add_group(
                            actor=actor,
                            project=project,
                            group={"id": data["group"]},
                            role_id=data["role"],
                        )
                        access.forget_roles()
                        return {"redirect": True}
                else:
                    change = RoleForm(request.POST)
                    if change.is_valid():
                        mid = change.cleaned_data["member"]
                        if action == "remove":
                            member_remove(actor=actor, project=project, member_id=mid)
                        elif change.cleaned_data["role"]:
                            member_update(
                                actor=actor,
                                project=project,
                                member_id=mid,
                                role_id=change.cleaned_data["role"],
                            )
                        access.forget_roles()
                        return {"redirect": True}
        except SERVICE_ERRORS as exc:
            (group_form if action == "add_group" else form).add_error(None, refusal(exc))
    members = member_list(actor=actor, project=project).order_by("user__username", "group__name")
    context: dict[str, Any] = {"members": members, "may_change": may_change, "roles": ROLE_NAMES}
    if may_change:
        context["form"] = form
        context["group_form"] = group_form if groups else None
        # The users the actor may add: Harbor lets every user search users by name.
        context["user_choices"] = (
            User.objects.filter(is_active=True)
            .exclude(pk__in=Member.objects.filter(project=project).values("user_id"))
            .order_by("username")
            .values_list("username", flat=True)[:USER_CHOICES]
        )
    return context


# robots -------------------------------------------------------------------------


def permission_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The permission picker: the actions of the resources Berth serves, grouped
    by resource (``accounts.rbac.SERVED_PROJECT_RESOURCES``)."""
    return [
        (res, [(f"{res}:{act}", act) for act in sorted(actions)])
        for res, actions in sorted(SERVED_PROJECT_RESOURCES.items())
    ]


class RobotForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    description = forms.CharField(label=gettext_lazy("Description"), required=False)
    duration = forms.IntegerField(
        label=gettext_lazy("Days until it expires"),
        initial=-1,
        help_text=gettext_lazy("-1 for never."),
    )
    access = forms.MultipleChoiceField(
        label=gettext_lazy("Permissions"),
        choices=permission_choices,
        widget=forms.CheckboxSelectMultiple,
    )
    namespace = NamespaceField()


class RobotActionForm(forms.Form):
    robot = forms.IntegerField()
    namespace = NamespaceField(required=False)


def _robots(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    may_create = access.can(actor, "robot", "create", project)
    may_change = access.can(actor, "robot", "update", project)
    form = RobotForm() if may_create else None
    shown = None
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            with transaction.atomic():
                if action == "create" and may_create:
                    form = RobotForm(request.POST)
                    if form.is_valid():
                        data = form.cleaned_data
                        robot, secret = robot_create(
                            actor=actor,
                            name=data["name"],
                            level="project",
                            permissions=robot_permissions(project, data["access"], []),
                            duration=data["duration"],
                            description=data["description"],
                        )
                        shown = shown_secret(request, robot.name, secret, data["namespace"])
                        form = RobotForm()
                elif action in ("refresh", "disable", "enable") and may_change:
                    change = RobotActionForm(request.POST)
                    if change.is_valid():
                        rid = change.cleaned_data["robot"]
                        robots_visible(actor=actor, project_id=project.pk).get(pk=rid)
                        if action == "refresh":
                            secret = robot_refresh_secret(actor=actor, robot_id=rid)
                            robot = robots_visible(actor=actor, project_id=project.pk).get(pk=rid)
                            shown = shown_secret(
                                request, robot.name, secret, change.cleaned_data["namespace"]
                            )
                        else:
                            robot_update(
                                actor=actor,
                                robot_id=rid,
                                disable=action == "disable",
                                description=None,
                                duration=None,
                                permissions=None,
                            )
                            return {"redirect": True}
        except (*SERVICE_ERRORS, Robot.DoesNotExist) as exc:
            if form is None:
                raise PermissionDenied from None
            form.add_error(None, refusal(exc))
    return {
        "robots": robots_visible(actor=actor, project_id=project.pk).order_by("name"),
        "form": form,
        "may_change": may_change,
        "shown": shown,
    }


# the other tabs -----------------------------------------------------------------


def _summary(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    summary = project_summary(actor=actor, project=project)
    roles = [
        (ROLE_NAMES[role], summary[key])
        for role, key in (
            (Role.PROJECT_ADMIN, "project_admin_count"),
            (Role.MAINTAINER, "maintainer_count"),
            (Role.DEVELOPER, "developer_count"),
            (Role.GUEST, "guest_count"),
            (Role.LIMITED_GUEST, "limited_guest_count"),
        )
        if key in summary
    ]
    return {
        "repo_count": summary["repo_count"],
        "artifact_count": Manifest.objects.filter(repository__project=project).count(),
        "member_roles": roles,
        "quota": summary.get("quota"),
    }


def _repositories(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    """A page of the project's repositories (a project may hold thousands),
    each with its artifact count, counted for the rows shown only."""
    rows = access.restrict(Repository.objects.filter(project=project), actor, "repository", "list")
    rows = rows.annotate(artifacts=count_of(Manifest, "repository")).order_by("name")
    page = LargeTablePaginator(rows, REPOSITORY_ROWS).get_page(request.GET.get("page"))
    return {
        "repositories": page.object_list,
        "page": page,
        "artifacts_url": reverse("admin:registry_manifest_changelist"),
    }


def _immutable_rules(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    return {
        "rules": rule_list(actor=actor, project=project).order_by("priority", "pk"),
        "may_change": access.can(actor, "immutable-tag", "create", project),
    }


def _logs(request: HttpRequest, actor: Actor, project: Project) -> dict[str, Any]:
    rows = AuditEvent.objects.filter(project_id=project.pk).order_by("-occurred_at", "-pk")
    operation = request.GET.get("operation", "")
    if operation:
        rows = rows.filter(operation=operation)
    return {"events": rows[:LOG_ROWS], "operation": operation}


BUILDERS = {
    "summary": _summary,
    "repositories": _repositories,
    "members": _members,
    "robots": _robots,
    "immutable-rules": _immutable_rules,
    "logs": _logs,
}


def tab_url_name(tab: str) -> str:
    return "portal-project" if tab == "summary" else f"portal-project-{tab}"


def project_tab(request: HttpRequest, project_id: int, tab: str = "summary") -> HttpResponseBase:
    if not (request.user.is_authenticated and request.user.is_active):
        return redirect_to_login(request.get_full_path())
    if tab not in TABS:
        raise Http404
    actor = identity.actor_of_user(request.user)
    project = _project(actor, project_id)
    tabs = [
        (name, title, reverse(tab_url_name(name), args=[project.pk]))
        for name, (title, resource, action) in TABS.items()
        if access.can(actor, resource, action, project)
    ]
    if tab not in {name for name, *_rest in tabs}:
        raise PermissionDenied
    body = BUILDERS[tab](request, actor, project)
    if body.pop("redirect", False):
        return redirect(request.path)
    context = {
        **site.each_context(request),
        "title": project.name,
        "subtitle": TABS[tab][0],
        "project": project,
        "tabs": tabs,
        "tab": tab,
        **body,
    }
    response: HttpResponse = render(request, f"portal/project/{tab}.html", context)
    if body.get("shown"):
        response["Cache-Control"] = "no-store"  # the secret is not kept by caches
    return response
