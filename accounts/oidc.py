"""OpenID Connect sign-in: the OIDC kind of identity provider, on
mozilla-django-oidc's backend, configured per provider at run time.

- Discovery: the provider's ``<issuer>/.well-known/openid-configuration`` is
  read through the guarded client (kit/outbound.py) and cached
  (``DISCOVERY_TTL``); its ``issuer`` must be the configured one.
- The authorization code flow with PKCE (S256): ``begin`` makes the
  authorization URL and keeps ``state``, the nonce and the code verifier in the
  session, one entry per flow in progress (``FLOWS_KEPT`` at most); the
  callback takes the entry of its ``state`` (once) and ``OIDCBackend``
  exchanges the code. The backend's three calls to the provider (token, JWKS,
  userinfo) go through the guarded client.
- The ID token: RS256/ES256 signature against the provider's JWKS (cached),
  ``iss`` the provider's issuer, ``aud`` containing our client id, ``exp`` in
  the future, ``iat`` present, and the nonce of this flow (a token without one
  is refused).
- The claims (ID token, then userinfo over it) give the subject (``sub``), the
  user name (``user_claim``, by default ``preferred_username``), e-mail, name
  and groups (``groups_claim``), then accounts/services/sso.py binds them.
- The refresh token is kept sealed (kit.sealed) on the identity
  (``OidcToken``), never in the session.
- ``verify_id_token`` serves ``Authorization: Bearer <ID token>`` on the API,
  as Harbor does.

The client secret is the provider's sealed secret: unsealed for the token
request only, sent as HTTP Basic (never in a URL, never logged).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import generate_code_challenge

from accounts.errors import Invalid
from accounts.models import IdentityProvider, User
from accounts.services import providers
from accounts.services.sso import Assertion, filter_groups
from kit import outbound

Kind = IdentityProvider.Kind
DISCOVERY_TTL = 300
JWKS_TTL = 300
JWKS_REFETCH = 60
FLOWS_KEPT = 5
FLOW_SECONDS = 600
LEEWAY = 60
MAX_DOCUMENT = 256 * 1024
SESSION_KEY = "berth_oidc_flows"
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")

OIDC_SPEC: providers.Spec = {
    "issuer": (str, ""),  # e.g. https://login.example.com/realms/main
    "client_id": (str, ""),
    # The client secret is the provider's secret (write-only).
    "scope": (str, "openid profile email offline_access"),
    "verify_cert": (bool, True),
    "ca_cert": (str, ""),  # PEM, for a provider under a private CA
    "timeout": (int, 10),  # seconds, each call to the provider
    "user_claim": (str, "preferred_username"),  # the name a new user gets
    "groups_claim": (str, "groups"),
    "group_filter": (str, ""),  # RE2; groups not matching are ignored
    "admin_group": (str, ""),  # its members are system administrators
    "logout": (bool, True),  # RP-initiated logout at sign-out
}


def _check(config: dict[str, Any]) -> None:
    issuer = config["issuer"]
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("issuer must be an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise Invalid("issuer must not hold a query, a fragment or credentials")
    if not config["client_id"]:
        raise Invalid("client_id is required")
    if "openid" not in config["scope"].split():
        raise Invalid("scope must include openid")
    if not 1 <= config["timeout"] <= 120:
        raise Invalid("timeout must be between 1 and 120 seconds")
    if config["group_filter"]:
        from kit import patterns

        patterns.regex(config["group_filter"])


settings_of = providers.settings_of  # the provider's settings over the kind's defaults


class ProviderError(Exception):
    """The provider could not be reached or answered nonsense (safe to show)."""


def _session(config: dict[str, Any]) -> requests.Session:
    verify: bool | str = bool(config.get("verify_cert", True))
    if verify and config.get("ca_cert"):
        verify = outbound.ca_bundle(config["ca_cert"])
    timeout = float(config.get("timeout", 10))
    return outbound.session(purpose="oidc", verify=verify, timeout=(timeout, timeout))


def _get_json(config: dict[str, Any], url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = _session(config).get(url, stream=True, **kwargs)
        body = outbound.read_capped(response, MAX_DOCUMENT)
    except outbound.TooLarge:
        raise ProviderError(f"the provider's {what} is too large") from None
    except requests.RequestException as exc:
        raise ProviderError(f"the provider's {what} is unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ProviderError(f"the provider's {what} answered {response.status_code}")
    try:
        document = json.loads(body)
    except ValueError:
        raise ProviderError(f"the provider's {what} is not JSON") from None
    if not isinstance(document, dict):
        raise ProviderError(f"the provider's {what} is not a JSON object")
    return document


def _cache_key(*parts: str) -> str:
    return "oidc:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


def discover(config: dict[str, Any], *, fresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document (cached ``DISCOVERY_TTL`` seconds)."""
    issuer = config["issuer"].rstrip("/")
    key = _cache_key("discovery", issuer)
    cache = caches["local"]
    document = None if fresh else cache.get(key)
    if document is None:
        document = _get_json(config, f"{issuer}/.well-known/openid-configuration", "discovery")
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise ProviderError("the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise ProviderError(f"the discovery document lacks {name}")
        cache.set(key, document, DISCOVERY_TTL)
    return document


def jwks(config: dict[str, Any], *, fresh: bool = False) -> dict[str, Any] | None:
    """The provider's signing keys (cached ``JWKS_TTL`` seconds). ``fresh``:
    fetched again because a token names a key not among them (the provider
    rotated its keys) — at most once per ``JWKS_REFETCH`` seconds, so tokens
    naming made-up keys cannot make Berth hammer the provider; None when
    that refetch is not due."""
    url = discover(config)["jwks_uri"]
    key = _cache_key("jwks", url)
    cache = caches["local"]
    if fresh and not cache.add(_cache_key("jwks-refetch", url), True, JWKS_REFETCH):
        return None
    document = None if fresh else cache.get(key)
    if document is None:
        document = _get_json(config, url, "JWKS")
        if not isinstance(document.get("keys"), list):
            raise ProviderError("the provider's JWKS holds no keys")
        cache.set(key, document, JWKS_TTL)
    return document


def _signing_key(config: dict[str, Any], token: str) -> jwt.PyJWK:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SuspiciousOperation("the ID token is not a JWT") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise SuspiciousOperation(f"the ID token's algorithm {alg!r} is not accepted")
    for fresh in (False, True):
        document = jwks(config, fresh=fresh)
        for candidate in document["keys"] if document else []:
            if not isinstance(candidate, dict):
                continue
            if header.get("kid") is not None and candidate.get("kid") != header.get("kid"):
                continue
            if candidate.get("alg", alg) != alg or candidate.get("use", "sig") != "sig":
                continue
            try:
                return jwt.PyJWK(candidate, algorithm=alg)
            except jwt.PyJWTError:
                continue
    raise SuspiciousOperation("no key of the provider signed this ID token")


def verify_id_token(config: dict[str, Any], token: str, *, nonce: str | None) -> dict[str, Any]:
    """The claims of an ID token of this provider: signature, issuer, audience,
    expiry and (when ``nonce`` is given) the nonce checked. Raises
    SuspiciousOperation (or ProviderError when the keys are unreachable)."""
    key = _signing_key(config, token)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=config["client_id"],
            issuer=config["issuer"].rstrip("/"),
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.InvalidIssuerError:
        # Some providers write the issuer with a trailing slash.
        claims = _decode_slash(token, key, config)
    except jwt.PyJWTError as exc:
        raise SuspiciousOperation(f"the ID token is not valid: {exc}") from None
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SuspiciousOperation("the ID token's nonce is not this sign-in's")
    azp = claims.get("azp")
    if (
        isinstance(claims.get("aud"), list)
        and len(claims["aud"]) > 1
        and azp != config["client_id"]
    ):
        raise SuspiciousOperation("the ID token was issued to another client")
    return claims


def _decode_slash(token: str, key: jwt.PyJWK, config: dict[str, Any]) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=config["client_id"],
            issuer=config["issuer"].rstrip("/") + "/",
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise SuspiciousOperation(f"the ID token is not valid: {exc}") from None


def client_secret(provider: IdentityProvider) -> str:
    return providers.secret_of(provider)


def external_base(request: HttpRequest) -> str:
    """Berth's own origin as browsers reach it: ``BERTH_EXTERNAL_URL``, else the request's."""
    return (
        str(settings.BERTH_EXTERNAL_URL).rstrip("/") or f"{request.scheme}://{request.get_host()}"
    )


def callback_url(request: HttpRequest) -> str:
    return external_base(request) + reverse("oidc-callback")


# The flow ------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    provider_id: int
    nonce: str
    verifier: str
    next: str
    started: float


def begin(request: HttpRequest, provider: IdentityProvider, *, next_url: str = "/") -> str:
    """The authorization URL to send the browser to, the flow kept in the session."""
    config = settings_of(provider)
    document = discover(config)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    flows: dict[str, Any] = dict(request.session.get(SESSION_KEY, {}))
    # The newest few flows only (several tabs may sign in at once).
    for old in sorted(flows, key=lambda s: flows[s]["started"])[
        : max(0, len(flows) - FLOWS_KEPT + 1)
    ]:
        del flows[old]
    flows[state] = {
        "provider": provider.pk,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_url,
        "started": time.time(),
    }
    request.session[SESSION_KEY] = flows
    query = {
        "response_type": "code",
        "client_id": config["client_id"],
        "redirect_uri": callback_url(request),
        "scope": config["scope"],
        "state": state,
        "nonce": nonce,
        "code_challenge": generate_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256",
    }
    if "offline_access" in config["scope"].split():
        query["prompt"] = "consent"
    endpoint = document["authorization_endpoint"]
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)


def take_flow(request: HttpRequest, state: str) -> Flow | None:
    """The flow of this ``state``, removed from the session (a state answers
    once); None for an unknown or stale one."""
    flows: dict[str, Any] = dict(request.session.get(SESSION_KEY, {}))
    entry = flows.pop(state, None) if state else None
    request.session[SESSION_KEY] = flows
    if not isinstance(entry, dict) or time.time() - entry["started"] > FLOW_SECONDS:
        return None
    return Flow(
        provider_id=entry["provider"],
        nonce=entry["nonce"],
        verifier=entry["verifier"],
        next=entry["next"],
        started=entry["started"],
    )


def assertion_from_claims(provider: IdentityProvider, claims: dict[str, Any]) -> Assertion:
    config = settings_of(provider)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 1024:
        raise SuspiciousOperation("the provider named no subject")
    username = claims.get(config.get("user_claim") or "preferred_username")
    if not isinstance(username, str) or not username:
        username = claims.get("preferred_username") or claims.get("email") or subject
    groups = claims.get(config.get("groups_claim") or "groups") or []
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        groups = []
    kept = filter_groups(provider, groups)
    return Assertion(
        subject=subject,
        username=str(username)[:150],
        email=str(claims.get("email") or "")[:254],
        realname=str(claims.get("name") or "")[:255],
        groups=kept,
        details={"iss": claims.get("iss"), "email": claims.get("email"), "groups": list(kept)},
    )


class OIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's code exchange for one provider, its calls made
    through the guarded client and its ID token checked by
    ``verify_id_token``. Not in ``AUTHENTICATION_BACKENDS``: only the callback
    view calls it, with the flow's nonce and code verifier; it returns the
    verified claims (``claims``) and leaves binding to accounts/services/sso.py."""

    def __init__(self, provider: IdentityProvider) -> None:
        self.provider = provider
        self.config = settings_of(provider)
        self.document = discover(self.config)
        self.claims: dict[str, Any] = {}
        self.refresh_token = ""
        self.id_token = ""
        super().__init__()

    def get_settings(self, attr: str, *args: Any) -> Any:
        values: dict[str, Any] = {
            "OIDC_OP_TOKEN_ENDPOINT": self.document["token_endpoint"],
            "OIDC_OP_USER_ENDPOINT": self.document.get("userinfo_endpoint") or "",
            "OIDC_OP_JWKS_ENDPOINT": self.document["jwks_uri"],
            "OIDC_RP_CLIENT_ID": self.config["client_id"],
            "OIDC_RP_CLIENT_SECRET": client_secret(self.provider),
            "OIDC_RP_SIGN_ALGO": "RS256",
            "OIDC_RP_SCOPES": self.config["scope"],
            "OIDC_USE_NONCE": True,
            "OIDC_TOKEN_USE_BASIC_AUTH": True,
            "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc-callback",
            "OIDC_CREATE_USER": self.provider.allow_create_users,
        }
        if attr in values:
            return values[attr]
        if args:
            return args[0]
        raise KeyError(attr)

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The code exchanged at the token endpoint (client_secret_basic), the
        answer capped; a refusal says the provider's error code only (the
        request, and its secret, is never logged)."""
        secret = payload.pop("client_secret", "")
        payload["redirect_uri"] = callback_url(self.request)
        try:
            response = _session(self.config).post(
                self.document["token_endpoint"],
                data=payload,
                auth=(self.config["client_id"], secret),
                stream=True,
            )
            raw = outbound.read_capped(response, MAX_DOCUMENT)
        except outbound.TooLarge:
            raise ProviderError("the provider's token answer is too large") from None
        except requests.RequestException as exc:
            raise ProviderError(
                f"the provider's token endpoint is unreachable: {type(exc).__name__}"
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            error = str(body.get("error", ""))[:100]
            raise SuspiciousOperation(
                f"the provider refused the code ({response.status_code} {error})"
            )
        if not isinstance(body.get("id_token"), str) or not body["id_token"]:
            raise SuspiciousOperation("the provider's token answer holds no ID token")
        self.refresh_token = str(body.get("refresh_token") or "")
        self.id_token = body["id_token"]
        return body

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        nonce = kwargs.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise SuspiciousOperation("this sign-in has no nonce")
        return verify_id_token(self.config, token, nonce=nonce)

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims, with the userinfo endpoint's over them (for
        the same subject only)."""
        claims = dict(payload)
        endpoint = self.document.get("userinfo_endpoint")
        if endpoint and access_token:
            info = _get_json(
                self.config,
                endpoint,
                "userinfo",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            if info.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("the userinfo names another subject")
            claims.update(info)
        return claims

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        self.claims = self.get_userinfo(access_token, id_token, payload)
        return self.claims

    def store_tokens(self, access_token: str, id_token: str) -> None:
        """Nothing in the session: the ID token is kept by the view for
        logout, the refresh token sealed on the identity."""


def exchange(request: HttpRequest, provider: IdentityProvider, flow: Flow) -> OIDCBackend:
    """Exchange the callback's code: the backend with the verified ``claims``.
    Raises SuspiciousOperation (a refused token) or ProviderError."""
    backend = OIDCBackend(provider)
    claims = backend.authenticate(request, nonce=flow.nonce, code_verifier=flow.verifier)
    if not claims:
        raise SuspiciousOperation("the callback carries no code")
    return backend


def logout_url(provider: IdentityProvider, id_token: str, return_to: str) -> str:
    """Where to send the browser to end its session at the provider (RP-initiated
    logout); "" when the provider has no end-session endpoint or logout is off."""
    if not settings_of(provider).get("logout", True):
        return ""
    try:
        endpoint = discover(settings_of(provider)).get("end_session_endpoint")
    except ProviderError:
        return ""
    if not isinstance(endpoint, str) or not endpoint:
        return ""
    query = {"post_logout_redirect_uri": return_to, "client_id": settings_of(provider)["client_id"]}
    if id_token:
        query["id_token_hint"] = id_token
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)


def ping(config: dict[str, Any], secret: str) -> str:
    """Is the provider's discovery document reachable (``/system/oidc/ping``)?"""
    try:
        document = discover(config, fresh=True)
    except ProviderError as exc:
        raise Invalid(str(exc)) from None
    return f"discovered {document['issuer']}"


def register() -> None:
    providers.register_kind(Kind.OIDC, OIDC_SPEC, _check)
    providers.register_ping(Kind.OIDC, ping)


# Authorization: Bearer <ID token> on the API -----------------------------------------


def _issuer_of(token: str) -> str:
    """The ``iss`` a JWT claims (unverified: only to choose the provider whose
    keys then verify it); "" when it is no JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer.rstrip("/") if isinstance(issuer, str) else ""


def user_for_id_token(token: str) -> User | None:
    """The user an ID token of an enabled OpenID Provider proves (Harbor accepts
    ``Authorization: Bearer <ID token>`` on its API): signature against the
    provider's JWKS (cached), issuer, audience (our client id) and expiry
    checked; the identity (provider, ``sub``) must be bound to an active user.

    None when the token names no enabled provider's issuer (the caller tries
    its other schemes); raises SuspiciousOperation when it names one and is
    not valid, or binds nobody."""
    issuer = _issuer_of(token)
    if not issuer:
        return None
    provider = next(
        (
            p
            for p in providers.enabled(Kind.OIDC)
            if str(p.config.get("issuer", "")).rstrip("/") == issuer
        ),
        None,
    )
    if provider is None:
        return None
    try:
        claims = verify_id_token(settings_of(provider), token, nonce=None)
    except ProviderError as exc:
        raise SuspiciousOperation(str(exc)) from None
    identity = (
        provider.identities.select_related("user")
        .filter(subject=str(claims["sub"]), user__is_active=True)
        .first()
    )
    if identity is None:
        raise SuspiciousOperation("the ID token's subject has no Berth user")
    return identity.user


# Harbor's /configurations oidc_* keys: the primary OIDC provider -------------------

# Harbor key → this kind's setting. ``oidc_scope`` is comma-separated in
# Harbor, space-separated here; ``oidc_name`` is the provider's name.
HARBOR_KEYS = {
    "oidc_endpoint": "issuer",
    "oidc_client_id": "client_id",
    "oidc_scope": "scope",
    "oidc_verify_cert": "verify_cert",
    "oidc_user_claim": "user_claim",
    "oidc_groups_claim": "groups_claim",
    "oidc_group_filter": "group_filter",
    "oidc_admin_group": "admin_group",
    "oidc_logout": "logout",
}
HARBOR_SECRET = "oidc_client_secret"  # noqa: S105 - the key's name, write-only
HARBOR_EDITABLE = ("oidc_name", *HARBOR_KEYS, HARBOR_SECRET)


def primary() -> IdentityProvider | None:
    """The OIDC provider Harbor's single-provider keys speak for: the first
    by order, enabled or not."""
    return IdentityProvider.objects.filter(kind=Kind.OIDC).order_by("order", "id").first()


def harbor_view() -> dict[str, Any]:
    """The oidc_* keys' values (never the client secret)."""
    provider = primary()
    if provider is None:
        return {"oidc_verify_cert": True, "oidc_auto_onboard": True, "oidc_logout": True}
    config = settings_of(provider)
    view: dict[str, Any] = {key: config[name] for key, name in HARBOR_KEYS.items()}
    view["oidc_scope"] = ",".join(str(config["scope"]).split())
    view["oidc_name"] = provider.name
    view["oidc_auto_onboard"] = provider.allow_create_users
    return view


def harbor_update(*, actor: Any, values: dict[str, Any]) -> None:
    """Harbor's ``PUT /configurations`` with oidc_* keys (and ``auth_mode``
    ``oidc_auth``, which enables the primary OIDC provider): the primary OIDC
    provider takes them, made when there is none (named ``oidc_name`` or
    ``oidc``)."""
    config = {HARBOR_KEYS[k]: v for k, v in values.items() if k in HARBOR_KEYS}
    if config.get("issuer") == "":
        # An empty endpoint means "no OIDC provider" (Harbor's clients send every
        # key): it never replaces a provider's issuer.
        del config["issuer"]
    if isinstance(config.get("scope"), str):
        config["scope"] = " ".join(s.strip() for s in config["scope"].split(",") if s.strip())
    changes: dict[str, Any] = {}
    if config:
        changes["config"] = config
    if values.get(HARBOR_SECRET):
        changes["secret"] = values[HARBOR_SECRET]
    if values.get("oidc_name"):
        changes["name"] = values["oidc_name"]
    if values.get("auth_mode") == "oidc_auth":
        changes["enabled"] = True
    elif values.get("auth_mode") == "db_auth":
        changes["enabled"] = False
    if not changes:
        return
    provider = primary()
    if provider is None and not config.get("issuer"):
        # Harbor's clients send oidc_* keys (often empty, or oidc_verify_cert
        # alone) whatever the auth mode: with no endpoint there is no OIDC
        # provider to make, and nothing to change unless one is asked for.
        if changes.get("enabled"):
            raise Invalid("oidc_endpoint is required to use OIDC sign-in")
        return
    if provider is None:
        providers.provider_create(
            actor=actor,
            kind=Kind.OIDC,
            name=changes.get("name") or "oidc",
            config=changes.get("config"),
            secret=changes.get("secret"),
            enabled=bool(changes.get("enabled", False)),
        )
        return
    providers.provider_update(actor=actor, provider_id=provider.pk, changes=changes)


register()
