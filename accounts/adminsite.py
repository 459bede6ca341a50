"""Berth's admin site: the portal every signed-in user works in.

Django's stock site admits ``is_staff`` users and decides with Django's model
permissions. Berth's site admits every active signed-in user and decides with
Harbor's roles instead (docs/portal.md):

- a system administrator may use every admin page;
- everyone else sees the rows of the projects the policy module lets them see
  (their projects and the public ones), each admin cut with
  ``accounts.access.restrict`` to the projects where the user may list its
  resource, and every object decision is ``accounts.access.can`` on the
  object's own project: a guest sees a repository's tags, a maintainer may
  also delete them, a project admin manages members and robots.

``AdminScope`` is the one place the admin turns a request into those decisions;
the model admins in ``accounts/admin.py`` and ``registry/admin.py`` ask it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Count, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy

from accounts import access, identity
from accounts.access import Actor
from accounts.errors import Conflict, Denied, Invalid, NotFound, PreconditionFailed
from accounts.models import Project
from accounts.services import config
from accounts.services.users import user_set_password
from accounts.views import login_event
from kit.errors import CodedError
from kit.net import client_ip


class AdminScope:
    """What the requesting user may do in the admin, computed once per request.

    For a non-sysadmin: their role in each project they belong to (one query).
    Model-level answers ("may this user add robots at all?") ask
    ``accounts.access.role_allows`` for those roles and the public-project
    grants; object-level answers go through ``accounts.access.can`` on the
    object's own project; lists are ``accounts.access.restrict``-ed. The admin
    reads no permission table itself.
    """

    def __init__(self, request: HttpRequest) -> None:
        user = request.user
        self.user = user
        self.actor: Actor = identity.actor_of_user(user)
        self.sysadmin = bool(user.is_active and user.is_superuser)
        self._roles: dict[int, int] | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> AdminScope:
        scope = getattr(request, "_berth_admin_scope", None)
        if scope is None or scope.user is not request.user:
            scope = cls(request)
            request._berth_admin_scope = scope  # type: ignore[attr-defined]
        return scope

    @property
    def roles(self) -> dict[int, int]:
        """project id → the user's role there."""
        if self._roles is None:
            self._roles = {} if self.sysadmin else access.memberships(self.actor)
        return self._roles

    @cached_property
    def distinct_roles(self) -> frozenset[int]:
        """The roles the user holds anywhere: at most five, however many projects."""
        return frozenset(self.roles.values())

    def may_use_admin(self) -> bool:
        return self.actor.authenticated

    def may(self, resource: str, action: str) -> bool:
        """May the user do this in at least one project (theirs, or a public one)?"""
        if self.sysadmin:
            return True
        if access.public_allows(resource, action):
            return True
        return any(access.role_allows(r, resource, action) for r in self.distinct_roles)

    def may_on(self, resource: str, action: str, project: Project | None) -> bool:
        """The object-level decision: ``access.can`` on the object's project."""
        if self.sysadmin:
            return True
        if project is None or not self.actor.authenticated:
            return False
        return access.can(self.actor, resource, action, project)

    def projects(self, resource: str, action: str) -> QuerySet[Project]:
        """Projects where the user may do this."""
        return access.projects_where(self.actor, resource, action)

    def restrict(
        self, queryset: QuerySet[Any], project_path: str, resource: str, action: str
    ) -> QuerySet[Any]:
        """Rows whose project (reached by ``project_path``) lets the user do
        ``resource:action``."""
        return access.restrict(queryset, self.actor, resource, action, project_path=project_path)


def count_of(model: type[Model], field: str) -> Coalesce:
    """A correlated count of ``model`` rows whose ``field`` is the outer row, for
    changelist annotations: evaluated for the rows of the page only, in the page's
    one query, with none of the fan-out two joined ``Count``s would have."""
    rows = (
        model._default_manager.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


class LargeTablePaginator(Paginator):
    """The paginator of changelists over big tables (100,000 artifacts in one
    repository, 10,000 projects): the count stops at ``COUNT_CAP`` (a count of
    at most that many keys, never a ``COUNT(*)`` of the whole table; the page
    says "more than"), and a page is fetched by its keys first — the offset
    walks an index of keys, then only the page's rows are read with their
    annotations (per-row subqueries are evaluated for the rows shown, not for
    every row the offset skips)."""

    COUNT_CAP = 10_000

    @property
    def rows(self) -> QuerySet[Any]:
        return self.object_list  # type: ignore[return-value]

    @cached_property
    def count(self) -> int:
        return self.rows.values("pk")[: self.COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.COUNT_CAP

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        if self.count <= self.per_page:  # one page: its rows at once
            return Page(list(self.rows), number, self)
        bottom = (number - 1) * self.per_page
        keys = list(self.rows.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        found = {row.pk: row for row in self.rows.order_by().filter(pk__in=keys)}
        return Page([found[k] for k in keys if k in found], number, self)


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist over a table that grows without bound: no full count, the
    capped count and key-first pages of ``LargeTablePaginator``."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    # Rendering a row costs more than reading it: 50 rows a page keeps a page
    # of artifacts or projects well under 100 ms (docs/portal.md, make bench).
    list_per_page = 50


class ProjectScopedAdmin(admin.ModelAdmin):
    """A model admin whose rows belong to a project: queryset and permissions
    follow the requesting user's roles through ``AdminScope``."""

    resource = ""  # the RBAC resource these rows are
    project_path = "project"  # how a row reaches its project, as a lookup
    list_action = "list"  # what the user needs in a project to see its rows listed
    view_action = "read"  # ... to open one

    def project_of(self, obj: Any) -> Project | None:
        return obj.project

    def _allowed(self, request: HttpRequest, action: str, obj: Any = None) -> bool:
        scope = AdminScope.of(request)
        if obj is None:
            return scope.may(self.resource, action)
        return scope.may_on(self.resource, action, self.project_of(obj))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return AdminScope.of(request).restrict(
            super().get_queryset(request), self.project_path, self.resource, self.list_action
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return AdminScope.of(request).may(self.resource, self.list_action)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return self._allowed(request, self.list_action)
        return self._allowed(request, self.view_action, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, "create")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, "update", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, "delete", obj)


class SysadminOnlyAdmin(admin.ModelAdmin):
    """Only system administrators see these rows."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return AdminScope.of(request).sysadmin

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return AdminScope.of(request).sysadmin

    def has_add_permission(self, request: HttpRequest) -> bool:
        return AdminScope.of(request).sysadmin

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return AdminScope.of(request).sysadmin

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return AdminScope.of(request).sysadmin


class ReadOnlyMixin:
    """Append-only or content rows: viewed in the admin, changed only by the
    registry protocol and its jobs."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


SERVICE_ERRORS = (Invalid, Conflict, Denied, NotFound, PreconditionFailed, CodedError)


def registry_host(request: HttpRequest) -> str:
    """The host clients pull from: BERTH_EXTERNAL_URL's, else the request's."""
    return urlsplit(settings.BERTH_EXTERNAL_URL).netloc or request.get_host()


def refusal(exc: Exception) -> str:
    """A service's refusal as a sentence for the page."""
    if isinstance(exc, CodedError):
        return str(exc) or exc.message
    return str(exc) or type(exc).__name__


class ServiceDeleteAdmin(admin.ModelAdmin):
    """A model admin whose deletes are service calls (``delete_model``): a
    refusal (an immutable tag, deletes turned off, a non-empty project) comes
    back as a message on the object's page instead of an error page. Bulk
    deletes are left out: each delete is a decision of its own."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except SERVICE_ERRORS as exc:
            messages.error(request, refusal(exc))
            opts = self.model._meta
            return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", object_id)


class ServiceForm(forms.ModelForm):
    """A model form whose save is a call to a service (``accounts.services``).

    The call runs at the very end of validation, only when every field is valid,
    inside the admin view's transaction; a service's refusal (Invalid, Conflict,
    Denied, ...) becomes a form error, so the rules live in the service alone and
    are never restated here. ``save()`` returns what the service wrote.
    """

    # Bound by ServiceFormAdmin.get_form to the requesting user's.
    actor: Actor
    scope: AdminScope

    def perform(self, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        try:
            with transaction.atomic():
                self.instance = self.perform(self.cleaned_data)
        except SERVICE_ERRORS as exc:
            self.add_error(None, refusal(exc))

    def save(self, commit: bool = True) -> Any:
        self.save_m2m = lambda: None  # type: ignore[method-assign]
        return self.instance


class ServiceFormAdmin(admin.ModelAdmin):
    """Binds the requesting actor to the form; saving is the form's service call."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        form = super().get_form(request, obj, change=change, **kwargs)
        scope = AdminScope.of(request)
        return type(form.__name__, (form,), {"actor": scope.actor, "scope": scope})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Already saved by the service, during validation."""


class BerthAuthenticationForm(AuthenticationForm):
    """The sign-in form of the portal (``/``) and the admin: credentials checked
    by Berth's own authentication (``accounts.identity.login``: the same throttle
    and credential cache as the token service and ``/c/login``), robots refused,
    every active user let in."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        if self.request is None:  # the admin's login view always passes it
            raise self.get_invalid_login_error()
        try:
            proof = identity.login(self.request, username=username, password=password)
        except identity.Throttled as exc:
            raise ValidationError(str(exc), code="throttled") from None
        user = proof.user if proof is not None else None
        login_event(username, client_ip(self.request.META), user is not None)
        if user is None:  # robots have no admin session
            refusal = getattr(self.request, "berth_refusal", "")
            if refusal:  # an identity provider said why (accounts/directory.py)
                raise ValidationError(refusal, code="refused")
            raise self.get_invalid_login_error()
        self.user_cache = user
        self.confirm_login_allowed(user)
        return self.cleaned_data

    def confirm_login_allowed(self, user: Any) -> None:
        if not user.is_active:
            raise self.get_invalid_login_error()


class BerthPasswordChangeForm(PasswordChangeForm):
    """Change password (every signed-in user): the change is
    ``accounts.services.users.user_set_password`` (the policy, the audit row),
    as through the API."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            user_set_password(
                actor=identity.actor_of_user(self.user),
                user_id=self.user.pk,
                old=data["old_password"],
                new=data["new_password1"],
            )
        except SERVICE_ERRORS as exc:
            raise ValidationError(refusal(exc)) from None
        # The session keeps its hash of the new password (update_session_auth_hash).
        self.user.refresh_from_db(fields=["password"])
        return data

    def save(self, commit: bool = True) -> Any:
        return self.user  # saved by the service, during validation


class BerthAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Berth")
    site_title = gettext_lazy("Berth")
    index_title = gettext_lazy("Management")
    site_url = "/"
    login_form = BerthAuthenticationForm
    login_template = "portal/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_authenticated and AdminScope.of(request).may_use_admin()

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Django's, with a button per enabled OpenID Provider and CAS server,
        and the way to self-registration while it is enabled (as ``/``)."""
        from accounts.services.sso import sign_in_buttons

        extra = {
            "sso_providers": sign_in_buttons(),
            "self_registration": bool(config.get("self_registration")),
            **(extra_context or {}),
        }
        return super().login(request, extra_context=extra)

    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Django's sign-out; a session that came through an OpenID Provider or
        a CAS server then signs out there too (accounts/sso_views.py)."""
        from django.http import HttpResponseRedirect

        from accounts.sso_views import provider_logout_url

        upstream = provider_logout_url(request) if request.method == "POST" else ""
        response = super().logout(request, extra_context=extra_context)
        return HttpResponseRedirect(upstream) if upstream else response

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        """Django's, with Berth's form (Django's site names its form in code)."""
        view = PasswordChangeView.as_view(
            form_class=BerthPasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )
        request.current_app = self.name
        return view(request)  # type: ignore[return-value]


site = BerthAdminSite(name="admin")
