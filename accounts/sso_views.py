"""Browser sign-in through OpenID Providers and CAS servers (thin views: the
protocols are accounts/oidc.py and accounts/cas.py, binding is
accounts/services/sso.py).

- ``/c/oidc/login?provider=<name>&next=<path>`` → the provider (the primary,
  first enabled, OIDC provider without ``provider``);
- ``/c/oidc/callback`` ← the provider: the code exchanged, the user signed in;
- ``/c/oidc/onboard``: a new identity whose name is taken chooses another;
- ``/c/cas/<name>/login`` → the CAS server; its ``ticket`` comes back
  to the same URL; a single-logout POST from the server ends the session the
  ticket opened;
- ``POST /c/sso/logout``: signs out of Berth, then of the provider the session came
  from (RP-initiated logout, CAS logout).

Failures answer a page that says what went wrong (400, or 502 when the
provider could not be reached) and never the provider's secrets; local sign-in
is never affected.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import login, logout
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import oidc
from accounts.adminsite import site
from accounts.errors import Invalid
from accounts.models import IdentityProvider, OidcToken, User
from accounts.services import sso
from accounts.views import login_event
from kit import sealed
from kit.net import client_ip

log = logging.getLogger("berth.sso")

Kind = IdentityProvider.Kind
SESSION_SSO = "berth_sso"  # {"provider": id, "id_token": ..., "kind": ...}
SESSION_ONBOARD = "berth_onboard"
# What the session reloads the user with: ended by disabling the provider.
BACKEND = "accounts.services.sso.SsoSessionBackend"


def _failure(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    context = {**site.each_context(request), "title": _("Sign-in failed"), "message": message}
    return render(request, "portal/sso_failed.html", context, status=status)


def _next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return "/"


def _provider(kind: str, name: str) -> IdentityProvider | None:
    rows = IdentityProvider.objects.filter(kind=kind, enabled=True)
    if name:
        rows = rows.filter(name=name)
    return rows.order_by("order", "id").first()


def _signed_in(
    request: HttpRequest, user: User, provider: IdentityProvider, **session: Any
) -> None:
    user.backend = BACKEND  # type: ignore[attr-defined]
    login(request, user)
    request.session[SESSION_SSO] = {"provider": provider.pk, "kind": provider.kind, **session}
    login_event(user.username, client_ip(request.META), True)


def _keep_refresh_token(user: User, provider: IdentityProvider, token: str) -> None:
    if not token:
        return
    identity = user.identities.filter(provider=provider).first()
    if identity is not None:
        OidcToken.objects.update_or_create(
            identity=identity, defaults={"refresh_sealed": sealed.seal(token)}
        )


# OIDC ------------------------------------------------------------------------------


@require_http_methods(["GET"])
def oidc_login(request: HttpRequest) -> HttpResponseBase:
    provider = _provider(Kind.OIDC, request.GET.get("provider", ""))
    if provider is None:
        return _failure(request, _("No such OpenID Provider is enabled."), 404)
    try:
        url = oidc.begin(request, provider, next_url=_next(request, request.GET.get("next", "")))
    except oidc.ProviderError as exc:
        log.warning("OIDC provider %s: %s", provider.name, exc)
        return _failure(request, _("The identity provider cannot be reached."), 502)
    return HttpResponseRedirect(url)


@require_http_methods(["GET"])
def oidc_callback(request: HttpRequest) -> HttpResponseBase:
    flow = oidc.take_flow(request, request.GET.get("state", ""))
    if flow is None:
        return _failure(request, _("This sign-in is unknown or expired (state). Start again."))
    if request.GET.get("error"):
        return _failure(request, _("The identity provider refused the sign-in."))
    provider = IdentityProvider.objects.filter(
        pk=flow.provider_id, kind=Kind.OIDC, enabled=True
    ).first()
    if provider is None:
        return _failure(request, _("This identity provider is disabled."))
    try:
        backend = oidc.exchange(request, provider, flow)
        assertion = oidc.assertion_from_claims(provider, backend.claims)
    except oidc.ProviderError as exc:
        log.warning("OIDC provider %s: %s", provider.name, exc)
        return _failure(request, _("The identity provider cannot be reached."), 502)
    except SuspiciousOperation as exc:
        log.warning("OIDC sign-in through %s refused: %s", provider.name, exc)
        return _failure(request, _("The identity provider's answer was refused."))
    return _bind(request, provider, assertion, flow.next, backend.id_token, backend.refresh_token)


def _bind(
    request: HttpRequest,
    provider: IdentityProvider,
    assertion: sso.Assertion,
    next_url: str,
    id_token: str = "",
    refresh_token: str = "",
) -> HttpResponseBase:
    try:
        user = sso.sign_in(provider, assertion)
    except sso.Onboarding:
        request.session[SESSION_ONBOARD] = {
            "provider": provider.pk,
            "assertion": {
                "subject": assertion.subject,
                "username": assertion.username,
                "email": assertion.email,
                "realname": assertion.realname,
                "groups": list(assertion.groups),
                "details": assertion.details,
            },
            "id_token": id_token,
            "refresh": sealed.seal(refresh_token) if refresh_token else "",
            "next": next_url,
        }
        return HttpResponseRedirect("/c/oidc/onboard")
    except sso.SignInRefused as exc:
        login_event(assertion.username, client_ip(request.META), False)
        return _failure(request, str(exc), 403)
    _signed_in(request, user, provider, id_token=id_token)
    _keep_refresh_token(user, provider, refresh_token)
    return HttpResponseRedirect(next_url)


@require_http_methods(["GET", "POST"])
def oidc_onboard(request: HttpRequest) -> HttpResponseBase:
    """Harbor's onboarding: the provider's suggested name is taken; the person
    chooses the name of their new Berth account."""
    pending = request.session.get(SESSION_ONBOARD)
    if not isinstance(pending, dict):
        return _failure(request, _("There is no sign-in waiting for a user name."))
    provider = IdentityProvider.objects.filter(pk=pending["provider"], enabled=True).first()
    if provider is None:
        return _failure(request, _("This identity provider is disabled."))
    assertion = sso.Assertion(
        **{**pending["assertion"], "groups": tuple(pending["assertion"]["groups"])}
    )
    error = ""
    username = assertion.username
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        try:
            user = sso.complete_onboarding(provider, assertion, username)
        except Invalid as exc:
            error = str(exc)
        except sso.SignInRefused as exc:
            del request.session[SESSION_ONBOARD]
            return _failure(request, str(exc), 403)
        else:
            del request.session[SESSION_ONBOARD]
            _signed_in(request, user, provider, id_token=pending.get("id_token", ""))
            if pending.get("refresh"):
                _keep_refresh_token(user, provider, sealed.unseal(pending["refresh"]))
            return HttpResponseRedirect(pending.get("next") or "/")
    context = {
        **site.each_context(request),
        "title": _("Choose your user name"),
        "provider": provider,
        "taken": assertion.username,
        "username": username,
        "error": error,
    }
    return render(request, "portal/sso_onboard.html", context, status=400 if error else 200)


# Signing out -------------------------------------------------------------------------


def provider_logout_url(request: HttpRequest) -> str:
    """Where the browser goes after Berth's sign-out to end its session at the
    provider it signed in through ("" for a local sign-in)."""
    state = request.session.get(SESSION_SSO)
    if not isinstance(state, dict):
        return ""
    provider_id = state.get("provider")
    if not isinstance(provider_id, int):
        return ""
    provider = IdentityProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        return ""
    home = oidc.external_base(request) + "/"
    if provider.kind == Kind.OIDC:
        return oidc.logout_url(provider, str(state.get("id_token", "")), home)
    if provider.kind == Kind.CAS:
        from accounts import cas

        return cas.logout_url(provider, home)
    return ""


@require_http_methods(["POST"])  # a GET would let any page sign people out
def sso_logout(request: HttpRequest) -> HttpResponseBase:
    upstream = provider_logout_url(request)
    logout(request)
    return HttpResponseRedirect(upstream or "/")


# CAS ---------------------------------------------------------------------------------


@csrf_exempt  # the CAS server's single-logout POST carries no CSRF token
@require_http_methods(["GET", "POST"])
def cas_login(request: HttpRequest, name: str) -> HttpResponseBase:
    from accounts import cas

    provider = _provider(Kind.CAS, name)
    if request.method == "POST":
        return cas.single_logout(request, provider)
    if provider is None:
        return _failure(request, _("No such CAS server is enabled."), 404)
    ticket = request.GET.get("ticket", "")
    if not ticket:
        return HttpResponseRedirect(cas.login_url(request, provider))
    try:
        assertion = cas.validate(request, provider, ticket)
    except cas.ProviderError as exc:
        log.warning("CAS server %s: %s", provider.name, exc)
        return _failure(request, _("The identity provider cannot be reached."), 502)
    except SuspiciousOperation as exc:
        log.warning("CAS sign-in through %s refused: %s", provider.name, exc)
        return _failure(request, _("The CAS ticket was refused."))
    response = _bind(request, provider, assertion, _next(request, request.GET.get("next", "")))
    if request.user.is_authenticated and request.session.session_key:
        cas.remember_ticket(ticket, request.session.session_key)
    return response
