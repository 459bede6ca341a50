"""The one authorization hook of the /v2 request path.

``authorize`` runs for every /v2 request after the name is validated and before
any storage or database access for the repository. Until accounts and the token
service land (issue 3) every caller is an anonymous principal identified by its
address, and every action is allowed: run Berth on a trusted network until then.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.http import HttpRequest


class Action(enum.Enum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    CATALOG = "catalog"
    NONE = "none"  # GET /v2/: authentication check only


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    client: str

    @property
    def upload_owner(self) -> str:
        """Whose open uploads count against the per-principal cap."""
        return self.name if self.name != "anonymous" else f"anonymous@{self.client}"


def authorize(request: HttpRequest, *, name: str | None, action: Action) -> Principal:
    """Who is calling, and may they do ``action`` on repository ``name``?

    Raises RegistryError(UNAUTHORIZED / DENIED / NAME_UNKNOWN) when not.
    """
    return Principal(name="anonymous", client=request.META.get("REMOTE_ADDR", ""))


def readable(principal: Principal, names: list[str]) -> list[str]:
    """The repositories among ``names`` the principal may pull from (mount sources)."""
    return list(names)
