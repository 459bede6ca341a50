"""Harbor's registry and replication API (``/registries…``,
``/replication/…``): sysadmins (and robots granted the system resources)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.access import Actor, require_system
from accounts.api.base import HarborView, body, created
from accounts.api.paging import paginate
from kit import sealed
from kit.errors import Invalid, NotFound
from replication.api import render
from replication.models import Endpoint, Execution, Policy, Status, Task
from replication.services import endpoints as endpoint_svc
from replication.services import executions as execution_svc
from replication.services import policies as policy_svc

ADAPTER_TYPES = list(endpoint_svc.ADAPTERS)


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def _registry_fields(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Harbor's Registry / RegistryUpdate / RegistryPing bodies → the
    service's fields and the secret (None: not given)."""
    fields: dict[str, Any] = {}
    for key in ("name", "description", "url", "type"):
        if (value := _text(data, key)) is not None:
            fields[key] = value
    if data.get("insecure") is not None:
        if not isinstance(data["insecure"], bool):
            raise Invalid("insecure must be a boolean")
        fields["insecure"] = data["insecure"]
    if (ca := _text(data, "ca_certificate")) is not None:
        fields["ca_pem"] = ca
    credential = data.get("credential")
    if credential is not None and not isinstance(credential, dict):
        raise Invalid("credential must be an object")
    credential = credential or {}
    kind = _text(credential, "type") or _text(data, "credential_type")
    if kind:
        fields["credential_type"] = kind
    access_key = _text(credential, "access_key") if credential else _text(data, "access_key")
    if access_key is not None:
        fields["access_key"] = access_key
    secret = _text(credential, "access_secret") if credential else _text(data, "access_secret")
    return fields, secret


class RegistryList(HarborView):
    def get(self, request: Request) -> Response:
        require_system(self.actor(request), "registry", "list")
        rows = Endpoint.objects.order_by("id")
        if name := request.query_params.get("name"):
            rows = rows.filter(name__icontains=name)
        q = request.query_params.get("q", "")
        if q.startswith("name="):
            rows = rows.filter(name__icontains=q[5:].strip("~"))
        return paginate(request, rows, lambda page: [render.registry(e) for e in page])

    def post(self, request: Request) -> Response:
        fields, secret = _registry_fields(body(request))
        endpoint = endpoint_svc.endpoint_create(
            actor=self.actor(request), data=fields, secret=secret or ""
        )
        return created(f"/api/v2.0/registries/{endpoint.pk}")


class RegistryPing(HarborView):
    def post(self, request: Request) -> Response:
        actor = self.actor(request)
        data = body(request)
        fields, secret = _registry_fields(data)
        if data.get("id"):
            endpoint = endpoint_svc.endpoint_get(actor=actor, endpoint_id=_int(data["id"]))
            for key, value in fields.items():
                setattr(endpoint, key, value)
            if secret is not None:
                endpoint.access_secret_sealed = sealed.seal(secret)
        else:
            require_system(actor, "registry", "read")
            endpoint = endpoint_svc.endpoint_unsaved(fields, secret or "")
        ok, text = endpoint_svc.endpoint_ping(actor=actor, endpoint=endpoint)
        if not ok:
            raise Invalid(f"failed to ping the registry: {text}")
        return Response(status=200)


def _int(value: Any) -> int:
    text = str(value)
    if isinstance(value, bool) or not isinstance(value, int | str) or not text.isascii():
        raise Invalid("id must be an integer")
    if not text.isdigit():
        raise Invalid("id must be an integer")
    if len(text) > 18:
        raise Invalid("id is out of range")
    return int(value)


class RegistryDetail(HarborView):
    def get(self, request: Request, registry_id: int) -> Response:
        endpoint = endpoint_svc.endpoint_get(actor=self.actor(request), endpoint_id=registry_id)
        return Response(render.registry(endpoint))

    def put(self, request: Request, registry_id: int) -> Response:
        fields, secret = _registry_fields(body(request))
        endpoint_svc.endpoint_update(
            actor=self.actor(request), endpoint_id=registry_id, data=fields, secret=secret or None
        )
        return Response(status=200)

    def delete(self, request: Request, registry_id: int) -> Response:
        endpoint_svc.endpoint_delete(actor=self.actor(request), endpoint_id=registry_id)
        return Response(status=200)


class RegistryInfo(HarborView):
    def get(self, request: Request, registry_id: int) -> Response:
        endpoint = endpoint_svc.endpoint_get(actor=self.actor(request), endpoint_id=registry_id)
        return Response(render.info(endpoint_svc.adapter_for(endpoint).info()))


class Adapters(HarborView):
    def get(self, request: Request) -> Response:
        require_system(self.actor(request), "replication-adapter", "list")
        return Response(ADAPTER_TYPES)


class AdapterInfos(HarborView):
    def get(self, request: Request) -> Response:
        require_system(self.actor(request), "replication-adapter", "list")
        return Response(
            {
                kind: {
                    "endpoint_pattern": {
                        "endpoint_type": "EndpointPatternTypeFree",
                        "endpoints": [],
                    },
                    "credential_pattern": {
                        "access_key_type": "AccessKeyTypeFree",
                        "access_secret_type": "AccessSecretTypeFree",
                    },
                }
                for kind in ADAPTER_TYPES
            }
        )


def _registry_ref(value: Any, key: str) -> int | None:
    """A policy's ``src_registry``/``dest_registry``: a Registry object (its
    id read), null, or id 0 for this Berth."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"{key} must be an object")
    found = value.get("id")
    return _int(found) if found not in (None, 0) else None


def _policy_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("name", "description", "dest_namespace"):
        if (value := _text(data, key)) is not None:
            fields[key] = value
    for key, target in (
        ("replicate_deletion", "replicate_deletion"),
        ("deletion", "replicate_deletion"),
        ("override", "override"),
        ("enabled", "enabled"),
        ("copy_by_chunk", "copy_by_chunk"),
        ("single_active_replication", "single_active"),
    ):
        if key in data and data[key] is not None:
            if not isinstance(data[key], bool):
                raise Invalid(f"{key} must be a boolean")
            fields[target] = data[key]
    for key, target in (
        ("dest_namespace_replace_count", "dest_namespace_replace_count"),
        ("speed", "speed_kb"),
    ):
        if key in data and data[key] is not None:
            if isinstance(data[key], bool) or not isinstance(data[key], int):
                raise Invalid(f"{key} must be an integer")
            if not -(2**31) <= data[key] < 2**31:
                raise Invalid(f"{key} is out of range")
            fields[target] = data[key]
    for key, target in (("src_registry", "src_endpoint"), ("dest_registry", "dest_endpoint")):
        if key in data:
            fields[target] = _registry_ref(data[key], key)
    if "filters" in data:
        fields["filters"] = data["filters"]
    trigger = data.get("trigger")
    if trigger is not None:
        if not isinstance(trigger, dict):
            raise Invalid("trigger must be an object")
        fields["trigger"] = trigger.get("type") or "manual"
        settings = trigger.get("trigger_settings") or {}
        if not isinstance(settings, dict):
            raise Invalid("trigger_settings must be an object")
        cron = settings.get("cron")
        if cron is not None:
            if not isinstance(cron, str):
                raise Invalid("cron must be a string")
            fields["cron"] = cron
    return fields


class PolicyList(HarborView):
    def get(self, request: Request) -> Response:
        require_system(self.actor(request), "replication-policy", "list")
        rows = Policy.objects.select_related("src_endpoint", "dest_endpoint").order_by("id")
        if name := request.query_params.get("name"):
            rows = rows.filter(name__icontains=name)
        return paginate(request, rows, lambda page: [render.policy(p) for p in page])

    def post(self, request: Request) -> Response:
        policy = policy_svc.policy_create(
            actor=self.actor(request), data=_policy_fields(body(request))
        )
        return created(f"/api/v2.0/replication/policies/{policy.pk}")


class PolicyDetail(HarborView):
    def get(self, request: Request, policy_id: int) -> Response:
        return Response(
            render.policy(policy_svc.policy_get(actor=self.actor(request), policy_id=policy_id))
        )

    def put(self, request: Request, policy_id: int) -> Response:
        policy_svc.policy_update(
            actor=self.actor(request), policy_id=policy_id, data=_policy_fields(body(request))
        )
        return Response(status=200)

    def delete(self, request: Request, policy_id: int) -> Response:
        policy_svc.policy_delete(actor=self.actor(request), policy_id=policy_id)
        return Response(status=200)


class ExecutionList(HarborView):
    def get(self, request: Request) -> Response:
        require_system(self.actor(request), "replication", "list")
        rows = Execution.objects.order_by("-id")
        params = request.query_params
        if (policy_id := params.get("policy_id")) is not None:
            rows = rows.filter(policy_id=_int(policy_id))
        if status := params.get("status"):
            rows = rows.filter(status=status)
        if trigger := params.get("trigger"):
            rows = rows.filter(trigger=trigger)
        return paginate(request, rows, lambda page: [render.execution(e) for e in page])

    def post(self, request: Request) -> Response:
        data = body(request)
        if "policy_id" not in data:
            raise Invalid("policy_id is required")
        execution = execution_svc.execution_start(
            actor=self.actor(request), policy_id=_int(data["policy_id"])
        )
        return created(f"/api/v2.0/replication/executions/{execution.pk}")


class ExecutionDetail(HarborView):
    def get(self, request: Request, execution_id: int) -> Response:
        execution = execution_svc.execution_get(
            actor=self.actor(request), execution_id=execution_id
        )
        return Response(render.execution(execution))

    def put(self, request: Request, execution_id: int) -> Response:
        """Harbor's stopReplication."""
        execution_svc.execution_stop(actor=self.actor(request), execution_id=execution_id)
        return Response(status=200)


class TaskList(HarborView):
    def get(self, request: Request, execution_id: int) -> Response:
        actor: Actor = self.actor(request)
        execution = execution_svc.execution_get(actor=actor, execution_id=execution_id)
        rows = Task.objects.filter(execution=execution).defer("log").order_by("id")
        if status := request.query_params.get("status"):
            rows = rows.filter(status=status)
        if kind := request.query_params.get("resource_type"):
            rows = rows.filter(resource_type=kind)
        return paginate(request, rows, lambda page: [render.task(t) for t in page])


class TaskLog(HarborView):
    def get(self, request: Request, execution_id: int, task_id: int) -> HttpResponse:
        execution = execution_svc.execution_get(
            actor=self.actor(request), execution_id=execution_id
        )
        task = Task.objects.filter(execution=execution, pk=task_id).only("log").first()
        if task is None:
            raise NotFound(message=f"task {task_id} not found")
        return HttpResponse(task.log, content_type="text/plain; charset=utf-8")


__all__ = ["Status"]
