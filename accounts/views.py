"""``/service/token``: the Docker token service (GET) and its OAuth2 form (POST)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.http import is_same_domain
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import access, identity
from accounts.access import Actor
from accounts.errors import Invalid
from accounts.services import auth, tokens
from audit.events import Operation, Resource, Result
from audit.services import record_later
from kit.net import client_ip


def login_event(username: str, client: str, ok: bool) -> None:
    """The audit row of a login, whichever door it came through (docker login,
    /c/login, the portal's sign-in)."""
    record_later(
        actor=Actor(kind="robot" if username.startswith("robot$") else "user", name=username),
        operation=Operation.LOGIN,
        resource_type=Resource.SESSION,
        resource=username,
        client_ip=client,
        result=Result.SUCCESS if ok else Result.FAILURE,
    )


def _error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"code": code, "message": message}]}, status=status)
    for key, value in headers.items():
        response[key.replace("_", "-")] = value
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def token(request: HttpRequest) -> HttpResponse:
    client = client_ip(request.META)
    try:
        if request.method == "POST":
            return _oauth2(request)
        who = identity.identify(request, schemes=(identity.BASIC,))
        scopes = tokens.parse_scopes(request.GET.getlist("scope"))
    except identity.BadCredentials as exc:
        login_event(exc.username, client, False)
        return _error(401, "UNAUTHORIZED", "invalid username or password")
    except identity.Throttled as exc:
        return _error(429, "TOOMANYREQUESTS", str(exc), Retry_After=str(exc.retry_after))
    except Invalid as exc:  # too many scopes, or one too long (tokens.parse_scopes)
        return _error(400, "BAD_REQUEST", str(exc))
    actor = who.actor
    if who.scheme and not request.GET.getlist("scope"):
        # A token request with credentials and no scope is `docker login`.
        login_event(who.username, client, True)
    body = tokens.issue(actor, access.grant_scopes(actor, scopes))
    if request.GET.get("offline_token") == "true" and actor.authenticated:
        body["refresh_token"] = tokens.issue_refresh(actor, auth.principal_stamp(actor))
    return JsonResponse(body)


def _oauth2(request: HttpRequest) -> HttpResponse:
    grant_type = request.POST.get("grant_type", "")
    scopes = tokens.parse_scopes(request.POST.get("scope", "").split(" "))
    if grant_type == "password":
        proof = identity.login(
            request,
            username=request.POST.get("username", ""),
            password=request.POST.get("password", ""),
        )
        if proof is None:
            return _error(401, "UNAUTHORIZED", "invalid username or password")
        actor = proof.actor
    elif grant_type == "refresh_token":
        try:
            claims = tokens.verify(
                request.POST.get("refresh_token", ""), audience=tokens.REFRESH_AUDIENCE
            )
        except tokens.InvalidToken:
            return _error(401, "UNAUTHORIZED", "invalid refresh token")
        actor = auth.actor_for_refresh(claims)
        if not actor.authenticated:
            return _error(401, "UNAUTHORIZED", "refresh token revoked")
    else:
        return _error(400, "UNSUPPORTED", "grant_type must be password or refresh_token")
    body = tokens.issue(actor, access.grant_scopes(actor, scopes))
    response = {
        "access_token": body["access_token"],
        "scope": request.POST.get("scope", ""),
        "expires_in": body["expires_in"],
        "issued_at": body["issued_at"],
    }
    if request.POST.get("access_type") == "offline" or grant_type == "refresh_token":
        response["refresh_token"] = tokens.issue_refresh(actor, auth.principal_stamp(actor))
    return JsonResponse(response)


def _cross_site(request: HttpRequest) -> bool:
    """Does the request say it comes from a page of another site? Its
    ``Origin`` (or, without one, its ``Referer``) names a scheme and host that
    are neither this request's, ``BERTH_EXTERNAL_URL``'s nor in
    ``CSRF_TRUSTED_ORIGINS``. A request with
    neither (Harbor's clients, scripts, curl) is not cross-site: browsers send
    ``Origin`` with every cross-site POST.

    Written here rather than taken from ``CsrfViewMiddleware``: its origin
    check is private and tied to the token check, which these clients cannot
    pass (they hold no CSRF cookie before logging in)."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        referer = request.META.get("HTTP_REFERER")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin == f"{request.scheme}://{request.get_host()}":
        return False
    parts = urlsplit(origin)
    for trusted in [settings.BERTH_EXTERNAL_URL, *settings.CSRF_TRUSTED_ORIGINS]:
        allowed = urlsplit(trusted)
        if parts.scheme == allowed.scheme and is_same_domain(parts.netloc, allowed.netloc):
            return False
    return True


@csrf_exempt
@require_http_methods(["POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """Harbor's browser login: form fields ``principal`` and ``password`` → ``sid``.

    Exempt from the CSRF token (Harbor's clients post without one), but a post
    from another site's page is refused: it would log the victim's browser in
    as the attacker (login CSRF)."""
    from django.contrib.auth import login

    if _cross_site(request):
        return _error(403, "FORBIDDEN", "cross-site login refused")
    client = client_ip(request.META)
    principal = request.POST.get("principal", "")
    try:
        proof = identity.login(
            request, username=principal, password=request.POST.get("password", "")
        )
    except identity.Throttled as exc:
        return _error(429, "TOOMANYREQUESTS", str(exc), Retry_After=str(exc.retry_after))
    user = proof.user if proof is not None else None
    login_event(principal, client, user is not None)
    if user is None:  # robots have no browser session
        return _error(401, "UNAUTHORIZED", "invalid username or password")
    login(request, user)
    return HttpResponse(status=200)


@require_http_methods(["GET"])
def logout_view(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout

    logout(request)
    return HttpResponse(status=200)
