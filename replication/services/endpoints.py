"""Endpoints (Harbor's "registries"): create, change, delete, ping; and the
adapter an endpoint speaks through. Sysadmins only (Harbor's matrix:
``registry`` is a system resource)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.access import Actor, require_system
from audit.events import Operation, Resource
from audit.services import record
from kit import outbound, sealed
from kit.errors import Conflict, Invalid, NotFound, PreconditionFailed
from replication.adapters.base import Adapter
from replication.adapters.harbor import BerthAdapter, HarborAdapter
from replication.adapters.http import Auth
from replication.adapters.registry import NoCatalogAdapter, RegistryAdapter
from replication.models import CredentialType, Endpoint, EndpointType, Health

ADAPTERS: dict[str, type[RegistryAdapter]] = {
    EndpointType.BERTH: BerthAdapter,
    EndpointType.HARBOR: HarborAdapter,
    EndpointType.DOCKER_REGISTRY: RegistryAdapter,
    EndpointType.DOCKER_HUB_LIKE: NoCatalogAdapter,
}
FIELDS = (
    "name",
    "description",
    "url",
    "type",
    "credential_type",
    "access_key",
    "insecure",
    "ca_pem",
)


def _check_url(url: str) -> str:
    if len(url) > 1000:
        raise Invalid("url is longer than 1000 characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        raise Invalid("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http or https URL with a host")
    if parts.username or parts.password:
        raise Invalid("put credentials in access_key/access_secret, not in the url")
    if parts.query or parts.fragment:
        raise Invalid("url must not carry a query or fragment")
    return url.strip().rstrip("/")


def _validated(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in data:
        name = str(data["name"]).strip()
        if not name or len(name) > 255:
            raise Invalid("name is required (at most 255 characters)")
        out["name"] = name
    if "url" in data:
        out["url"] = _check_url(str(data["url"]))
    if "type" in data:
        if data["type"] not in ADAPTERS:
            raise Invalid(f"type must be one of {', '.join(ADAPTERS)}")
        out["type"] = data["type"]
    if "credential_type" in data:
        if data["credential_type"] not in CredentialType.values:
            raise Invalid("credential type must be basic or oauth")
        out["credential_type"] = data["credential_type"]
    for key in ("description", "access_key", "ca_pem"):
        if key in data:
            out[key] = str(data[key] or "")
    if len(out.get("access_key", "")) > 255:
        raise Invalid("access_key is longer than 255 characters")
    if "insecure" in data:
        out["insecure"] = bool(data["insecure"])
    if out.get("ca_pem") and "BEGIN CERTIFICATE" not in out["ca_pem"]:
        raise Invalid("ca_pem must be PEM certificates")
    return out


def _record(
    actor: Actor, operation: Operation, endpoint: Endpoint, changed: list[str] | None = None
) -> None:
    """In the change's transaction. What the row says of the endpoint: its
    URL and type, and the names of the fields a change touched, never the
    secret (only that it changed)."""
    detail: dict[str, Any] = {"id": endpoint.pk, "url": endpoint.url, "type": endpoint.type}
    if changed is not None:
        detail["changed"] = changed
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.REGISTRY,
        resource=endpoint.name,
        detail=detail,
    )


def endpoint_create(*, actor: Actor, data: dict[str, Any], secret: str = "") -> Endpoint:
    require_system(actor, "registry", "create")
    fields = _validated(data)
    for required in ("name", "url", "type"):
        if required not in fields:
            raise Invalid(f"{required} is required")
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                **fields, access_secret_sealed=sealed.seal(secret) if secret else ""
            )
            _record(actor, Operation.CREATE, endpoint)
            return endpoint
    except IntegrityError:
        raise Conflict(f"an endpoint named {fields['name']!r} exists") from None


def endpoint_get(*, actor: Actor, endpoint_id: int) -> Endpoint:
    require_system(actor, "registry", "read")
    found = Endpoint.objects.filter(pk=endpoint_id).first()
    if found is None:
        raise NotFound(message=f"registry {endpoint_id} not found")
    return found


def endpoint_update(
    *, actor: Actor, endpoint_id: int, data: dict[str, Any], secret: str | None = None
) -> Endpoint:
    """Change what is given; ``secret`` None keeps the sealed one (the API and
    the admin never show it, so an edit that leaves it out keeps it)."""
    require_system(actor, "registry", "update")
    endpoint = endpoint_get(actor=actor, endpoint_id=endpoint_id)
    changed = []
    for key, value in _validated(data).items():
        if getattr(endpoint, key) != value:
            changed.append(key)
        setattr(endpoint, key, value)
    if secret is not None:
        changed.append("access_secret")
        endpoint.access_secret_sealed = sealed.seal(secret) if secret else ""
    try:
        with transaction.atomic():
            endpoint.save()
            _record(actor, Operation.UPDATE, endpoint, changed)
    except IntegrityError:
        raise Conflict(f"an endpoint named {endpoint.name!r} exists") from None
    return endpoint


def endpoint_delete(*, actor: Actor, endpoint_id: int) -> None:
    require_system(actor, "registry", "delete")
    endpoint = endpoint_get(actor=actor, endpoint_id=endpoint_id)
    try:
        with transaction.atomic():
            _record(actor, Operation.DELETE, endpoint)
            endpoint.delete()
    except ProtectedError:
        raise PreconditionFailed("policies use this registry: delete them first") from None


def adapter_for(endpoint: Endpoint) -> RegistryAdapter:
    # No secret stored: anonymous (or a bearer-less public registry).
    secret = sealed.unseal(endpoint.access_secret_sealed) if endpoint.access_secret_sealed else ""
    if endpoint.credential_type == CredentialType.OAUTH:
        auth = Auth(bearer=secret)
    else:
        auth = Auth(username=endpoint.access_key, password=secret)
    verify: bool | str = not endpoint.insecure
    if endpoint.ca_pem and not endpoint.insecure:
        verify = outbound.ca_bundle(endpoint.ca_pem)
    return ADAPTERS[endpoint.type](
        endpoint.url,
        auth=auth,
        verify=verify,
        retries=settings.BERTH_REPLICATION_RETRIES,
        backoff=settings.BERTH_REPLICATION_BACKOFF_SECONDS,
    )


def ping(adapter: Adapter) -> tuple[bool, str]:
    try:
        adapter.ping()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
    return True, ""


def endpoint_ping(*, actor: Actor, endpoint: Endpoint) -> tuple[bool, str]:
    require_system(actor, "registry", "read")
    ok, text = ping(adapter_for(endpoint))
    if endpoint.pk:
        Endpoint.objects.filter(pk=endpoint.pk).update(
            status=Health.HEALTHY if ok else Health.UNHEALTHY,
            status_text=text,
            checked_at=timezone.now(),
        )
    return ok, text


def endpoint_unsaved(data: dict[str, Any], secret: str) -> Endpoint:
    """An endpoint to ping before it is saved (``POST /registries/ping``)."""
    fields = _validated(data)
    for required in ("url", "type"):
        if required not in fields:
            raise Invalid(f"{required} is required")
    return Endpoint(**fields, access_secret_sealed=sealed.seal(secret) if secret else "")
