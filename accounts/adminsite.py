"""Berth's admin site: the management surface for sysadmins and project admins.

Django's stock site admits ``is_staff`` users and decides with Django's model
permissions. Berth's site decides with Harbor's roles instead:

- a system administrator may use every admin page;
- a user who administers at least one project (holds ``member:create`` there,
  which is Harbor's projectAdmin) may use the admin too, scoped to the projects
  they administer: querysets are ``accounts.access.restrict`` to those projects,
  and every object decision is ``accounts.access.can`` on the object's project;
- everyone else (guests, developers, maintainers, robots) is refused at login.

``AdminScope`` is the one place the admin turns a request into those decisions;
the model admins in ``accounts/admin.py`` and ``registry/admin.py`` ask it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from accounts import access, identity
from accounts.access import Actor
from accounts.errors import Conflict, Denied, Invalid, NotFound, PreconditionFailed
from accounts.models import Project
from accounts.services.auth import actor_for_user


def administered_memberships(user: Any) -> dict[int, int]:
    """project id → role, for the projects ``user`` administers (one query)."""
    return access.administered_projects(actor_for_user(user))


class AdminScope:
    """What the requesting user may do in the admin, computed once per request.

    For a non-sysadmin: the projects they administer, with their role in each
    (one query). Model-level answers ("may this user add robots at all?") ask
    ``accounts.access.role_allows`` for those roles; object-level answers go
    through ``accounts.access.can`` on the object's own project. The admin reads
    no permission table itself.
    """

    def __init__(self, request: HttpRequest) -> None:
        user = request.user
        self.user = user
        self.actor: Actor = actor_for_user(user)  # type: ignore[arg-type]
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
        if self._roles is None:
            self._roles = {} if self.sysadmin else administered_memberships(self.user)
        return self._roles

    def may_use_admin(self) -> bool:
        return bool(self.user.is_active and (self.sysadmin or self.roles))

    def may(self, resource: str, action: str) -> bool:
        """May the user do this in at least one project of their admin scope?"""
        if self.sysadmin:
            return True
        return any(access.role_allows(r, resource, action) for r in self.roles.values())

    def may_on(self, resource: str, action: str, project: Project | None) -> bool:
        """The object-level decision: ``access.can`` on the object's project,
        within the projects the user administers."""
        if self.sysadmin:
            return True
        if project is None or project.pk not in self.roles:
            return False
        return access.can(self.actor, resource, action, project)

    def project_ids(self, resource: str, action: str) -> list[int]:
        return [
            pid for pid, role in self.roles.items() if access.role_allows(role, resource, action)
        ]

    def projects(self, resource: str, action: str) -> QuerySet[Project]:
        """Projects (within the admin scope) where the user may do this."""
        if self.sysadmin:
            return Project.objects.all()
        return Project.objects.filter(pk__in=self.project_ids(resource, action))

    def restrict(self, queryset: QuerySet[Any], project_path: str) -> QuerySet[Any]:
        """Rows whose project (reached by ``project_path``) the user administers."""
        if self.sysadmin:
            return queryset
        return access.restrict(queryset, self.actor, *access.ADMIN_GRANT, project_path=project_path)


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


class ProjectScopedAdmin(admin.ModelAdmin):
    """A model admin whose rows belong to a project: queryset and permissions
    follow the requesting user's roles through ``AdminScope``."""

    resource = ""  # the RBAC resource these rows are
    project_path = "project"  # how a row reaches its project, as a lookup

    def project_of(self, obj: Any) -> Project | None:
        return obj.project

    def _allowed(self, request: HttpRequest, action: str, obj: Any = None) -> bool:
        scope = AdminScope.of(request)
        if obj is None:
            return scope.may(self.resource, action)
        return scope.may_on(self.resource, action, self.project_of(obj))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return AdminScope.of(request).restrict(super().get_queryset(request), self.project_path)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return AdminScope.of(request).may_use_admin()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, "read", obj)

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


SERVICE_ERRORS = (Invalid, Conflict, Denied, NotFound, PreconditionFailed)


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
            self.add_error(None, str(exc) or type(exc).__name__)

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


class BerthAuthenticationForm(AdminAuthenticationForm):
    """The admin login: credentials checked by Berth's own authentication (the
    same throttle and credential cache as the token service), robots refused,
    and only users who may use the admin let in."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "not_admin": (
            "This account may not use the admin: it is for system administrators "
            "and project administrators."
        ),
    }

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
        if user is None:  # robots have no admin session
            raise self.get_invalid_login_error()
        self.user_cache = user
        self.confirm_login_allowed(user)
        return self.cleaned_data

    def confirm_login_allowed(self, user: Any) -> None:
        if not user.is_active:
            raise self.get_invalid_login_error()
        if not (user.is_superuser or administered_memberships(user)):
            raise ValidationError(self.error_messages["not_admin"], code="not_admin")


class BerthAdminSite(admin.AdminSite):
    site_header = "Berth administration"
    site_title = "Berth admin"
    index_title = "Management"
    login_form = BerthAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_authenticated and AdminScope.of(request).may_use_admin()


site = BerthAdminSite(name="admin")
