"""The site's own pages: sign-in and the dashboard at ``/``, the search page,
and the probes. The pages are the admin site's (``accounts.adminsite.site``):
same header, language switch and permissions; what each user sees is decided by
``accounts.access`` (docs/portal.md)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access, identity
from accounts.adminsite import SERVICE_ERRORS, BerthAuthenticationForm, refusal, site
from accounts.models import Member, Role, User
from accounts.passwords import POLICY
from accounts.services import config, sso
from accounts.services.users import user_create
from audit.events import Operation
from audit.models import AuditEvent
from kit import health
from registry.models import Repository

DASHBOARD_ROWS = 20
SEARCH_ROWS = 50


def home(request: HttpRequest) -> HttpResponseBase:
    """Sign-in for visitors, the dashboard for signed-in users."""
    if request.user.is_authenticated and request.user.is_active:
        return dashboard(request)
    return sign_in(request)


def sign_in(request: HttpRequest) -> HttpResponseBase:
    """Django's login view with Berth's form (``accounts.identity.login``: the
    throttle and credential checks of every login) and the admin's template."""
    context = {
        **site.each_context(request),
        "title": _("Sign in"),
        "app_path": request.path,
        "self_registration": bool(config.get("self_registration")),
        "sso_providers": sso.sign_in_buttons(),
    }
    view = LoginView.as_view(
        authentication_form=BerthAuthenticationForm,
        template_name="portal/login.html",
        extra_context=context,
    )
    return view(request)


class RegisterForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=255)
    email = forms.EmailField(label=gettext_lazy("Email"), required=False, max_length=255)
    realname = forms.CharField(label=gettext_lazy("Full name"), required=False, max_length=255)
    password1 = forms.CharField(
        label=gettext_lazy("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=POLICY,
    )
    password2 = forms.CharField(
        label=gettext_lazy("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


def register(request: HttpRequest) -> HttpResponseBase:
    """Self-registration, only while the runtime setting ``self_registration``
    (BERTH_SELF_REGISTRATION) is on, else a 404: the account is created by
    ``accounts.services.users.user_create`` as the API's ``POST /users`` does
    for an anonymous caller (the password policy, no privileges, the audit
    row); the new user then signs in."""
    if not config.get("self_registration"):
        raise Http404
    if request.user.is_authenticated:
        return redirect("home")
    form = RegisterForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                user = user_create(
                    actor=access.ANONYMOUS,
                    username=data["username"],
                    password=data["password1"],
                    email=data["email"],
                    realname=data["realname"],
                )
        except SERVICE_ERRORS as exc:
            form.add_error(None, refusal(exc))
        else:
            messages.success(
                request, _("Account %(name)s created: sign in.") % {"name": user.username}
            )
            return redirect("home")
    context = {**site.each_context(request), "title": _("Create an account"), "form": form}
    return render(request, "portal/register.html", context)


ROLE_NAMES = {
    Role.PROJECT_ADMIN: gettext_lazy("Project admin"),
    Role.MAINTAINER: gettext_lazy("Maintainer"),
    Role.DEVELOPER: gettext_lazy("Developer"),
    Role.GUEST: gettext_lazy("Guest"),
    Role.LIMITED_GUEST: gettext_lazy("Limited guest"),
}


def my_projects(user: User) -> list[dict[str, Any]]:
    """The projects the user is a member of, with their role and the projects'
    repository counts (two queries)."""
    # Their own memberships and their groups' (the highest role per project).
    best: dict[int, Member] = {}
    for m in access.member_rows(user.pk).select_related("project").order_by("project__name"):
        held = best.get(m.project_id)
        if held is None or access.highest_role((held.role, m.role)) != held.role:
            best[m.project_id] = m
    members = list(best.values())[:DASHBOARD_ROWS]
    counts = dict(
        Repository.objects.filter(project_id__in=[m.project_id for m in members])
        .values("project_id")
        .annotate(n=Count("id"))
        .values_list("project_id", "n")
    )
    return [
        {
            "project": m.project,
            "role": ROLE_NAMES.get(Role(m.role), ""),
            "repositories": counts.get(m.project_id, 0),
        }
        for m in members
    ]


def recent_pushes(actor: access.Actor) -> QuerySet[AuditEvent]:
    """Pushes in the audit trail the actor may read (the audit log API's rule)."""
    rows = AuditEvent.objects.filter(operation=Operation.PUSH)
    if not access.system_can(actor, "audit-log", "list"):
        rows = rows.filter(project_id__in=access.projects_where(actor, "log", "list").values("pk"))
    return rows


def dashboard(request: HttpRequest) -> HttpResponse:
    actor = identity.actor_of_user(request.user)
    context = {
        **site.each_context(request),
        "title": _("Dashboard"),
        "projects": my_projects(request.user),  # type: ignore[arg-type]
        "pushes": recent_pushes(actor)[:DASHBOARD_ROWS],
    }
    return render(request, "portal/dashboard.html", context)


def search(request: HttpRequest) -> HttpResponseBase:
    """Projects and repositories whose name contains the query, among those the
    user may see."""
    if not (request.user.is_authenticated and request.user.is_active):
        return redirect_to_login(request.get_full_path())
    actor = identity.actor_of_user(request.user)
    query = request.GET.get("q", "").strip()[:255]
    sections = []
    if query:
        projects = access.visible_projects(actor).filter(name__icontains=query)
        repositories = access.restrict(Repository.objects.all(), actor, "repository", "list")
        artifacts = reverse("admin:registry_manifest_changelist")
        sections = [
            {
                "id": "berth-found-projects",
                "caption": _("Projects"),
                "empty": _("No project matches."),
                "rows": [
                    (p.name, reverse("portal-project", args=[p.pk]))
                    for p in projects.order_by("name")[:SEARCH_ROWS]
                ],
            },
            {
                "id": "berth-found-repositories",
                "caption": _("Repositories"),
                "empty": _("No repository matches."),
                "rows": [
                    (r.name, f"{artifacts}?repository__id__exact={r.pk}")
                    for r in repositories.filter(name__icontains=query).order_by("name")[
                        :SEARCH_ROWS
                    ]
                ],
            },
        ]
    context = {
        **site.each_context(request),
        "title": _("Search"),
        "search_query": query,
        "sections": sections,
    }
    return render(request, "portal/search.html", context)


def livez(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers; no dependency is checked."""
    return JsonResponse({"status": "healthy"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 503 naming the failing components, or while draining."""
    ready, body = health.readiness()
    return JsonResponse(body, status=200 if ready else 503)
