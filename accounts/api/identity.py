"""Identity sources over the API: Harbor's ``/ldap/*`` and ``/usergroups``
(on the primary LDAP provider), and Berth's own
``/berth/identity-providers`` for the several-providers model. Thin views:
the services decide (accounts/services/providers.py, groups.py,
directory.py)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import render
from accounts.api.auth import actor_of
from accounts.api.base import HarborView, body, created
from accounts.api.paging import paginate
from accounts.api.params import Closed, Flag, Id, Integer, Text, fields, query
from accounts.errors import Invalid
from accounts.services import directory as ldap_svc
from accounts.services import groups as group_svc
from accounts.services import providers as svc

# Harbor's ldap_* names in a ping body → the provider's settings.
PING_KEYS = {
    "ldap_url": "url",
    "ldap_search_dn": "search_dn",
    "ldap_base_dn": "base_dn",
    "ldap_filter": "filter",
    "ldap_uid": "uid",
    "ldap_scope": "scope",
    "ldap_connection_timeout": "timeout",
    "ldap_verify_cert": "verify_cert",
}


class LdapConf(Closed):
    """Harbor's LdapConf (every key optional: the stored setting stands in)."""

    ldap_url = Text(required=False, allow_null=True)
    ldap_search_dn = Text(required=False, allow_null=True)
    ldap_search_password = Text(required=False, allow_null=True)
    ldap_base_dn = Text(required=False, allow_null=True)
    ldap_filter = Text(required=False, allow_null=True)
    ldap_uid = Text(required=False, allow_null=True)
    ldap_scope = Integer(required=False, allow_null=True, maximum=2)
    ldap_connection_timeout = Integer(required=False, allow_null=True, maximum=300)
    ldap_verify_cert = Flag(required=False, allow_null=True)


class LdapPing(HarborView):
    """``POST /ldap/ping``: the stored primary provider's settings, with what
    the body gives over them (or the body alone when none is stored).
    Harbor's answer: 200 with ``success`` and a ``message``."""

    def post(self, request: Request) -> Response:
        actor = self.actor(request)
        data = fields(request, LdapConf) if request.body else {}
        config = {PING_KEYS[k]: v for k, v in data.items() if k in PING_KEYS}
        primary = svc.primary_ldap()
        try:
            message = svc.provider_ping(
                actor=actor,
                kind="ldap",
                config=config,
                secret=data.get("ldap_search_password"),
                provider_id=primary.pk if primary else None,
            )
        except Invalid as exc:
            return Response({"success": False, "message": str(exc)})
        return Response({"success": True, "message": message})


class LdapUserQuery(serializers.Serializer):
    username = Text(required=False)


class LdapUserSearch(HarborView):
    def get(self, request: Request) -> Response:
        username = query(request, LdapUserQuery).get("username", "")
        found = ldap_svc.search_users(actor=self.actor(request), username=username)
        return Response([{k: u[k] for k in ("username", "realname", "email")} for u in found])


class LdapImportBody(serializers.Serializer):
    ldap_uid_list = serializers.ListField(child=Text(), allow_empty=False)


class LdapUserImport(HarborView):
    """``POST /ldap/users/import``: 200, or 404 with the uids that failed
    (Harbor's LdapFailedImportUser list)."""

    def post(self, request: Request) -> Response:
        uids = fields(request, LdapImportBody)["ldap_uid_list"]
        failed = ldap_svc.import_users(actor=self.actor(request), uids=uids)
        return Response(failed, status=404) if failed else Response(status=200)


class LdapGroupQuery(serializers.Serializer):
    groupname = Text(required=False)
    groupdn = Text(required=False)


class LdapGroupSearch(HarborView):
    def get(self, request: Request) -> Response:
        asked = query(request, LdapGroupQuery)
        return Response(
            ldap_svc.search_groups(
                actor=self.actor(request),
                name=asked.get("groupname", ""),
                dn=asked.get("groupdn", ""),
            )
        )


# /usergroups ----------------------------------------------------------------------


class GroupQuery(serializers.Serializer):
    ldap_group_dn = Text(required=False)
    group_name = Text(required=False)


class GroupBody(serializers.Serializer):
    """Harbor's UserGroup."""

    id = Integer(required=False, allow_null=True)
    group_name = Text(required=False, allow_null=True)
    group_type = Integer(required=False, allow_null=True)
    ldap_group_dn = Text(required=False, allow_null=True)


class UserGroupList(HarborView):
    def get(self, request: Request) -> Response:
        asked = query(request, GroupQuery)
        rows = group_svc.group_list(
            actor=self.actor(request),
            name=asked.get("group_name", ""),
            ldap_group_dn=asked.get("ldap_group_dn", ""),
        )
        return paginate(request, rows, lambda page: [render.usergroup(g) for g in page])

    def post(self, request: Request) -> Response:
        data = fields(request, GroupBody)
        group = group_svc.group_create(
            actor=self.actor(request),
            group_name=data.get("group_name"),
            group_type=data.get("group_type"),
            ldap_group_dn=data.get("ldap_group_dn", ""),
        )
        return created(f"/api/v2.0/usergroups/{group.pk}")


class GroupSearchQuery(serializers.Serializer):
    groupname = Text(required=False)


class UserGroupSearch(HarborView):
    def get(self, request: Request) -> Response:
        name = query(request, GroupSearchQuery).get("groupname", "")
        rows = group_svc.group_search(actor=self.actor(request), name=name)
        return paginate(request, rows, lambda page: [render.usergroup_search_item(g) for g in page])


class UserGroupDetail(HarborView):
    def get(self, request: Request, gid: int) -> Response:
        return Response(
            render.usergroup(group_svc.group_get(actor=self.actor(request), group_id=gid))
        )

    def put(self, request: Request, gid: int) -> Response:
        data = fields(request, GroupBody)
        group_svc.group_update(
            actor=self.actor(request), group_id=gid, group_name=data.get("group_name")
        )
        return Response(status=200)

    def delete(self, request: Request, gid: int) -> Response:
        group_svc.group_delete(actor=self.actor(request), group_id=gid)
        return Response(status=200)


# Berth's identity providers ------------------------------------------------------


class ProviderBody(Closed):
    """An identity provider; ``secret`` is write-only (absent or null: kept,
    "": cleared)."""

    kind = Text(required=False)
    name = Text(required=False)
    enabled = Flag(required=False, allow_null=True)
    order = Integer(required=False, allow_null=True, minimum=-(2**31), maximum=2**31 - 1)
    allow_create_users = Flag(required=False, allow_null=True)
    config = serializers.DictField(required=False, allow_null=True)
    secret = Text(required=False, allow_null=True)


class ProviderList(HarborView):
    def get(self, request: Request) -> Response:
        rows = svc.provider_list(actor=self.actor(request))
        return Response([render.identity_provider(p) for p in rows])

    def post(self, request: Request) -> Response:
        data = fields(request, ProviderBody)
        provider = svc.provider_create(
            actor=self.actor(request),
            kind=data.get("kind"),
            name=data.get("name"),
            config=data.get("config"),
            secret=data.get("secret"),
            enabled=data.get("enabled", True),
            order=data.get("order"),
            allow_create_users=data.get("allow_create_users", True),
        )
        return created(
            f"/api/v2.0/berth/identity-providers/{provider.pk}",
            render.identity_provider(provider),
        )


class ProviderDetail(HarborView):
    def get(self, request: Request, pid: int) -> Response:
        provider = svc.provider_get(actor=self.actor(request), provider_id=pid)
        return Response(render.identity_provider(provider))

    def put(self, request: Request, pid: int) -> Response:
        data = fields(request, ProviderBody)
        if "kind" in data:
            raise Invalid("the kind of a provider cannot change")
        changes: dict[str, Any] = dict(data)
        if "secret" not in body(request) or body(request)["secret"] is None:
            changes.pop("secret", None)
        provider = svc.provider_update(actor=self.actor(request), provider_id=pid, changes=changes)
        return Response(render.identity_provider(provider))

    def delete(self, request: Request, pid: int) -> Response:
        svc.provider_delete(actor=self.actor(request), provider_id=pid)
        return Response(status=200)


class PingBody(Closed):
    kind = Text(required=False)
    config = serializers.DictField(required=False, allow_null=True)
    secret = Text(required=False, allow_null=True)


def _ping(request: Request, provider_id: int | None) -> Response:
    data = fields(request, PingBody) if request.body else {}
    try:
        message = svc.provider_ping(
            actor=actor_of(request),
            kind=data.get("kind"),
            config=data.get("config"),
            secret=data.get("secret"),
            provider_id=provider_id,
        )
    except Invalid as exc:
        return Response({"success": False, "message": str(exc)})
    return Response({"success": True, "message": message})


class ProviderPing(HarborView):
    """``POST …/identity-providers/ping``: unsaved settings (``kind``,
    ``config``, ``secret``)."""

    def post(self, request: Request) -> Response:
        return _ping(request, None)


class ProviderPingStored(HarborView):
    """``POST …/identity-providers/{id}/ping``: its settings, with the body's
    over them."""

    def post(self, request: Request, pid: int) -> Response:
        return _ping(request, pid)


class OrderBody(Closed):
    ids = serializers.ListField(child=Id())


class ProviderOrder(HarborView):
    """``PUT …/identity-providers/order`` with ``{"ids": [...]}``: every
    provider, first to last."""

    def put(self, request: Request) -> Response:
        ids = fields(request, OrderBody)["ids"]
        rows = svc.provider_order(actor=self.actor(request), provider_ids=ids)
        return Response([render.identity_provider(p) for p in rows])
