"""CAS sign-in (protocol 2.0 and 3.0): the CAS kind of identity provider.

django-cas-ng's views and backend read one CAS server from the settings
(``CAS_SERVER_URL`` and friends, fixed at start), while Berth's providers are
rows added and changed at run time, several at once. So Berth uses the CAS
client django-cas-ng itself validates with (python-cas's ``CASClient``: the
login and logout URLs, the ticket validation response parser, the
single-logout request check) per provider, and django-cas-ng's
``SessionTicket`` table for single logout (which session a ticket opened).
The validation request itself goes through the guarded client
(kit/outbound.py), its answer capped at ``MAX_RESPONSE``: python-cas would
read an unbounded body through a plain session.

- ``login_url``: the CAS server's ``/login`` with our service URL
  (``/c/cas/<name>/login``: the provider in the path, since some servers —
  django-mama-cas among them — match a ticket's service by scheme, host and
  path only, and a ticket for one provider must not open another);
- ``validate``: ``serviceValidate`` (2.0) or ``p3/serviceValidate`` (3.0) of the
  ticket for that exact service URL; the user and attributes (``email``,
  ``display_name``, ``groups`` by default) become an Assertion. A ticket
  validates once: a ticket Berth has seen already is refused without asking
  the server (and the server refuses it too);
- ``single_logout``: a ``logoutRequest`` POSTed by the server ends the session
  its ticket opened;
- ``logout_url``: the server's ``/logout``, back to Berth afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from cas import CASClient, CASClientV3
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_cas_ng.models import SessionTicket

from accounts.errors import Invalid
from accounts.models import IdentityProvider
from accounts.services import providers
from accounts.services.sso import Assertion, filter_groups
from kit import outbound

Kind = IdentityProvider.Kind
MAX_RESPONSE = 256 * 1024
MAX_TICKET = 1024

CAS_SPEC: providers.Spec = {
    "server_url": (str, ""),  # e.g. https://cas.example.com/cas/
    "version": (int, 3),  # 2 or 3
    "verify_cert": (bool, True),
    "ca_cert": (str, ""),
    "timeout": (int, 10),
    "username_attribute": (str, ""),  # "" = the CAS user
    "email_attribute": (str, "email"),
    "realname_attribute": (str, "display_name"),
    "groups_attribute": (str, "groups"),
    "group_filter": (str, ""),
    "admin_group": (str, ""),
    "logout": (bool, True),  # sign out of the CAS server at sign-out
}


def _check(config: dict[str, Any]) -> None:
    parts = urlsplit(config["server_url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("server_url must be an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise Invalid("server_url must not hold a query, a fragment or credentials")
    if config["version"] not in (2, 3):
        raise Invalid("version must be 2 or 3")
    if not 1 <= config["timeout"] <= 120:
        raise Invalid("timeout must be between 1 and 120 seconds")
    if config["group_filter"]:
        from kit import patterns

        patterns.regex(config["group_filter"])


settings_of = providers.settings_of  # the provider's settings over the kind's defaults


class ProviderError(Exception):
    """The CAS server could not be reached or answered nonsense."""


def _server(config: dict[str, Any]) -> str:
    url = str(config["server_url"])
    return url if url.endswith("/") else url + "/"


def service_url(request: HttpRequest, provider: IdentityProvider) -> str:
    from accounts.oidc import external_base

    return external_base(request) + reverse("cas-login", args=[provider.name])


def _client(config: dict[str, Any], service: str) -> Any:
    return CASClient(version=config["version"], service_url=service, server_url=_server(config))


def login_url(request: HttpRequest, provider: IdentityProvider) -> str:
    return str(_client(settings_of(provider), service_url(request, provider)).get_login_url())


def logout_url(provider: IdentityProvider, return_to: str) -> str:
    if not settings_of(provider).get("logout", True):
        return ""
    return str(_client(settings_of(provider), return_to).get_logout_url(return_to))


def _session(config: dict[str, Any]) -> requests.Session:
    verify: bool | str = bool(config.get("verify_cert", True))
    if verify and config.get("ca_cert"):
        verify = outbound.ca_bundle(config["ca_cert"])
    timeout = float(config.get("timeout", 10))
    return outbound.session(purpose="cas", verify=verify, timeout=(timeout, timeout))


def validate(request: HttpRequest, provider: IdentityProvider, ticket: str) -> Assertion:
    """The assertion of a service ticket. Raises SuspiciousOperation (refused)
    or ProviderError (unreachable)."""
    if len(ticket) > MAX_TICKET or not ticket.isprintable():
        raise SuspiciousOperation("the ticket is malformed")
    if SessionTicket.objects.filter(ticket=ticket).exists():
        raise SuspiciousOperation("the ticket was used already")
    config = settings_of(provider)
    service = service_url(request, provider)
    suffix = "p3/serviceValidate" if config["version"] == 3 else "serviceValidate"
    try:
        response = _session(config).get(
            _server(config) + suffix, params={"ticket": ticket, "service": service}, stream=True
        )
        body = outbound.read_capped(response, MAX_RESPONSE)
    except outbound.TooLarge:
        raise ProviderError("the CAS server's answer is too large") from None
    except requests.RequestException as exc:
        raise ProviderError(f"the CAS server is unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise ProviderError(f"the CAS server answered {response.status_code}")
    try:
        user, attributes, _ = CASClientV3.parse_response_xml(body)
    except Exception:  # the parser raises whatever ElementTree does
        raise SuspiciousOperation("the CAS server's answer is not a CAS response") from None
    if not user:
        raise SuspiciousOperation("the CAS server did not validate the ticket")
    return _assertion(provider, str(user), attributes or {})


def _first(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _assertion(provider: IdentityProvider, user: str, attributes: dict[str, Any]) -> Assertion:
    config = settings_of(provider)
    username = (
        _first(attributes.get(config["username_attribute"])) if config["username_attribute"] else ""
    )
    groups = attributes.get(config["groups_attribute"]) or []
    if isinstance(groups, str):
        groups = [groups]
    kept = filter_groups(provider, groups)
    return Assertion(
        subject=user[:1024],
        username=(username or user)[:150],
        email=_first(attributes.get(config["email_attribute"]))[:254],
        realname=_first(attributes.get(config["realname_attribute"]))[:255],
        groups=kept,
        details={"email": _first(attributes.get(config["email_attribute"])), "groups": list(kept)},
    )


def remember_ticket(ticket: str, session_key: str) -> None:
    """The session a ticket opened (for single logout, and so it is never
    accepted again)."""
    SessionTicket.objects.create(session_key=session_key, ticket=ticket)


def single_logout(request: HttpRequest, provider: IdentityProvider | None) -> HttpResponse:
    """The CAS server's logoutRequest: end the session its ticket opened."""
    from importlib import import_module

    from django.conf import settings

    message = request.POST.get("logoutRequest", "")
    slos = CASClientV3.get_saml_slos(message.encode()[:MAX_RESPONSE]) if message else None
    if provider is None or not slos:
        return HttpResponse(status=400)
    ticket = slos[0].text or ""
    for row in SessionTicket.objects.filter(ticket=ticket):
        store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(
            session_key=row.session_key
        )
        store.flush()
    return HttpResponse(status=200)


def ping(config: dict[str, Any], secret: str) -> str:
    """Is the CAS server's login page reachable?"""
    try:
        response = _session(config).get(_server(config) + "login", stream=True)
        outbound.read_capped(response, MAX_RESPONSE)
    except (requests.RequestException, outbound.TooLarge) as exc:
        raise Invalid(f"the CAS server is unreachable: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise Invalid(f"the CAS server answered {response.status_code}")
    return f"reached {_server(config)}"


def register() -> None:
    providers.register_kind(Kind.CAS, CAS_SPEC, _check)
    providers.register_ping(Kind.CAS, ping)


register()
