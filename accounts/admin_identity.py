"""Identity providers and user groups in the admin (system administrators
only). Saving is the services' (accounts/services/providers.py, groups.py);
a provider's secret is write-only: the form never shows it, an empty field
keeps it, "clear" removes it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts.adminsite import (
    SERVICE_ERRORS,
    AdminScope,
    ServiceForm,
    ServiceFormAdmin,
    SysadminOnlyAdmin,
    refusal,
    site,
)
from accounts.errors import Invalid
from accounts.models import IdentityProvider, UserGroup
from accounts.services import groups, providers


class ProviderForm(ServiceForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The LDAP search DN's password or the OIDC client secret. Write-only: "
        "leave it empty to keep the stored one.",
    )
    clear_secret = forms.BooleanField(required=False, help_text="Remove the stored secret.")

    class Meta:
        model = IdentityProvider
        fields = ("kind", "name", "enabled", "order", "allow_create_users", "config")

    def perform(self, data: dict[str, Any]) -> IdentityProvider:
        config = data.get("config")
        if config is not None and not isinstance(config, dict):
            raise Invalid("config must be a JSON object")
        if self.instance.pk is None:
            return providers.provider_create(
                actor=self.actor,
                kind=data["kind"],
                name=data["name"],
                config=config or {},
                secret=data.get("secret") or None,
                enabled=data["enabled"],
                order=data.get("order"),
                allow_create_users=data["allow_create_users"],
            )
        changes: dict[str, Any] = {
            "name": data["name"],
            "enabled": data["enabled"],
            "order": data["order"],
            "allow_create_users": data["allow_create_users"],
            # The whole object as edited (keys left out take their defaults).
            "config": config or {},
        }
        if data.get("clear_secret"):
            changes["secret"] = ""
        elif data.get("secret"):
            changes["secret"] = data["secret"]
        # The form shows the stored settings in full: replace, not merge.
        return providers.provider_update(
            actor=self.actor, provider_id=self.instance.pk, changes=changes, replace_config=True
        )


@admin.register(IdentityProvider, site=site)
class IdentityProviderAdmin(ServiceFormAdmin, SysadminOnlyAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "enabled", "order", "allow_create_users", "secret_set")
    list_filter = ("kind", "enabled")
    ordering = ("order", "id")
    actions = ["ping"]

    @admin.display(description="secret", boolean=True)
    def secret_set(self, obj: IdentityProvider) -> bool:
        return obj.has_secret

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = ["kind", "name", "enabled", "order", "allow_create_users", "config"]
        fields += ["secret"] if obj is None else ["secret", "clear_secret"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("kind",) if obj is not None else ()

    def delete_model(self, request: HttpRequest, obj: IdentityProvider) -> None:
        providers.provider_delete(actor=AdminScope.of(request).actor, provider_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[IdentityProvider]) -> None:
        for provider in queryset:
            self.delete_model(request, provider)

    @admin.action(description="Test (ping) the selected providers")
    def ping(self, request: HttpRequest, queryset: QuerySet[IdentityProvider]) -> None:
        actor = AdminScope.of(request).actor
        for provider in queryset:
            try:
                answer = providers.provider_ping(actor=actor, provider_id=provider.pk)
            except SERVICE_ERRORS as exc:
                messages.error(request, f"{provider.name}: {refusal(exc)}")
            else:
                messages.success(request, f"{provider.name}: {answer}")


class GroupForm(ServiceForm):
    class Meta:
        model = UserGroup
        fields = ("name", "type", "ldap_group_dn")

    def perform(self, data: dict[str, Any]) -> UserGroup:
        if self.instance.pk is None:
            return groups.group_create(
                actor=self.actor,
                group_name=data["name"],
                group_type=data["type"],
                ldap_group_dn=data.get("ldap_group_dn", ""),
            )
        return groups.group_update(
            actor=self.actor, group_id=self.instance.pk, group_name=data["name"]
        )


@admin.register(UserGroup, site=site)
class UserGroupAdmin(ServiceFormAdmin, SysadminOnlyAdmin):
    form = GroupForm
    list_display = ("name", "type", "ldap_group_dn", "provider", "users")
    list_filter = ("type",)
    search_fields = ("name", "ldap_group_dn")
    list_select_related = ("provider",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserGroup]:
        return super().get_queryset(request).annotate(n_users=Count("memberships"))

    @admin.display(description="users", ordering="n_users")
    def users(self, obj: Any) -> int:
        return int(obj.n_users)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("type", "ldap_group_dn", "provider") if obj is not None else ()

    def delete_model(self, request: HttpRequest, obj: UserGroup) -> None:
        groups.group_delete(actor=AdminScope.of(request).actor, group_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserGroup]) -> None:
        for group in queryset:
            self.delete_model(request, group)
