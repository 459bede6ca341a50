"""GET /v2/ and the shared pagination of tag and catalog lists."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from kit import params
from kit.errors import Invalid
from registry.errors import Code, RegistryError
from registry.oci.access import Action, Principal
from registry.oci.dispatch import endpoint


def _version_check(request: HttpRequest, principal: Principal) -> HttpResponse:
    return JsonResponse({})


version_check = endpoint(
    {"GET": (Action.NONE, _version_check), "HEAD": (Action.NONE, _version_check)}
)


def page_params(request: HttpRequest) -> tuple[int, str]:
    """``n`` and ``last``: n is clamped to BERTH_PAGE_MAX, so memory never depends on it."""
    raw = request.GET.get("n")
    cap = settings.BERTH_PAGE_MAX
    if raw is None or raw == "":
        n = cap
    else:
        try:
            n = min(params.integer(raw, name="n"), cap)
        except Invalid:
            raise RegistryError(Code.PAGINATION_NUMBER_INVALID, detail={"n": raw[:50]}) from None
    last = request.GET.get("last", "")
    if len(last) > 255:
        raise RegistryError(Code.PAGINATION_NUMBER_INVALID, "invalid last", detail=None)
    # No name holds a NUL (PostgreSQL cannot even compare one): the names after
    # "x\0..." are exactly those after "x".
    return n, last.partition("\x00")[0]


def paged_response(
    request: HttpRequest, body: dict, items: list[str], more: bool, n: int
) -> JsonResponse:
    response = JsonResponse(body)
    if more and items:
        query = urlencode({"last": items[-1], "n": n})
        response["Link"] = f'<{request.path}?{query}>; rel="next"'
    return response


def _unknown(request: HttpRequest, principal: Principal, path: str) -> HttpResponse:
    raise RegistryError(Code.NAME_UNKNOWN, "no such endpoint", detail={"path": request.path[:200]})


not_found = endpoint(
    {m: (Action.NONE, _unknown) for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")}
)
