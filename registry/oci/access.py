"""The one authorization hook of the /v2 request path.

``authorize`` runs for every /v2 request after the name is validated and before
any storage or database access for the repository. Like Harbor, /v2 challenges
every request without credentials (``WWW-Authenticate: Bearer realm=…``, also for
public projects); clients then bring a token from the token service (anonymous
tokens carry the public grants). Basic credentials are accepted directly too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.access import Actor, repository_actions
from accounts.identity import BadCredentials, Throttled, identify
from accounts.services.auth import actor_from_claims
from accounts.services.tokens import (
    SERVICE,
    token_allows,
)
from registry.errors import Code, RegistryError


class Action(enum.Enum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    CATALOG = "catalog"
    NONE = "none"  # GET /v2/: authentication check only


@dataclass(frozen=True, slots=True)
class Principal:
    actor: Actor
    client: str
    claims: dict[str, Any] | None = None  # a Bearer token's, None for Basic

    @property
    def upload_owner(self) -> str:
        """Whose open uploads count against the per-principal cap."""
        if self.actor.authenticated:
            return f"{self.actor.kind}:{self.actor.name}"
        return f"anonymous@{self.client}"

    def may(self, name: str, action: str) -> bool:
        if self.claims is not None:
            return token_allows(self.claims, "repository", name, action)
        return action in repository_actions(self.actor, name)

    def may_update(self, name: str) -> bool:
        """May the caller change what is already there (move a tag)? Tokens carry
        only pull/push/delete, so this asks the access rules directly."""
        return "update" in repository_actions(self.full_actor(), name)

    def full_actor(self) -> Actor:
        """The actor with its current roles (a token carries only a name)."""
        if self.claims is None or not self.actor.authenticated:
            return self.actor
        return actor_from_claims(
            self.actor.kind, self.actor.name, self.actor.id, self.actor.token_id
        )


def realm(request: HttpRequest) -> str:
    base = settings.BERTH_EXTERNAL_URL or f"{request.scheme}://{request.get_host()}"
    return f"{base}/service/token"


def _challenge(
    request: HttpRequest, scope: str | None, *, insufficient: bool = False, message: str = ""
) -> RegistryError:
    header = f'Bearer realm="{realm(request)}",service="{SERVICE}"'
    if scope:
        header += f',scope="{scope}"'
    if insufficient:
        header += ',error="insufficient_scope"'
    return RegistryError(Code.UNAUTHORIZED, message or None, headers={"WWW-Authenticate": header})


def _scope(name: str | None, action: Action) -> str | None:
    if action is Action.CATALOG:
        return "registry:catalog:*"
    if name is None or action is Action.NONE:
        return None
    return f"repository:{name}:{action.value}"


def _credentials(request: HttpRequest, scope: str | None) -> Principal:
    try:
        who = identify(request)
    except BadCredentials as exc:
        raise _challenge(request, scope, message=str(exc)) from None
    except Throttled as exc:
        raise RegistryError(
            Code.TOOMANYREQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None
    if not who.scheme:
        raise _challenge(request, scope)
    return Principal(actor=who.actor, client=who.client, claims=who.claims)


def authorize(request: HttpRequest, *, name: str | None, action: Action) -> Principal:
    """Who is calling, and may they do ``action`` on repository ``name``?

    No credentials → 401 with a Bearer challenge naming the scope needed. A token
    without the scope → 401 challenge when the caller is anonymous (log in) or
    does hold the permission (fetch a fitting token); 403 DENIED when the caller
    lacks it. A private repository and a missing one answer alike.
    """
    scope = _scope(name, action)
    principal = _credentials(request, scope)
    if action is Action.NONE:
        return principal
    if action is Action.CATALOG:
        if principal.claims is not None and not token_allows(
            principal.claims, "registry", "catalog", "*"
        ):
            raise _challenge(request, scope, insufficient=True)
        return principal
    assert name is not None
    if principal.may(name, action.value):
        return principal
    if not principal.actor.authenticated:
        raise _challenge(request, scope, insufficient=principal.claims is not None)
    if principal.claims is not None and action.value in repository_actions(
        principal.full_actor(), name
    ):
        # The token was issued for other scopes than this request needs, and the
        # caller does hold this one: ask for a token that carries it.
        raise _challenge(request, scope, insufficient=True)
    raise RegistryError(
        Code.DENIED,
        f"requested access to the resource is denied: {action.value} on {name}",
    )


def readable(principal: Principal, names: list[str]) -> list[str]:
    """The repositories among ``names`` the principal may pull from (mount sources).

    A token issued for the target alone does not name the source; the caller's
    current permissions then decide (a mount never links what it cannot read).
    """
    out = [name for name in names if principal.may(name, "pull")]
    if len(out) == len(names) or principal.claims is None or not principal.actor.authenticated:
        return out
    actor = principal.full_actor()
    return [n for n in names if n in out or "pull" in repository_actions(actor, n)]
