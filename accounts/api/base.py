from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import Actor
from accounts.api.auth import actor_of
from accounts.errors import Invalid
from accounts.models import Project
from accounts.services.projects import project_lookup
from kit import params


class HarborView(APIView):
    """Thin views: parse, call a service with the actor, render."""

    def actor(self, request: Request) -> Actor:
        return actor_of(request)


def project_from(request: Request, ref: str, actor: Actor) -> Project:
    """Harbor's ``{project_name_or_id}``: an id when all digits, else a name;
    ``X-Is-Resource-Name: true`` makes it a name."""
    header = request.headers.get("X-Is-Resource-Name")
    by_name = params.optional_boolean(header, name="X-Is-Resource-Name")
    return project_lookup(actor=actor, ref=ref, by_name=True if by_name else None)


def body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    return data


def created(location: str, payload: Any = None) -> Response:
    response = Response(payload, status=201)
    response["Location"] = location
    return response


def int_id(value: str) -> int:
    if not value.isdigit():
        raise Invalid("id must be an integer")
    return int(value)
