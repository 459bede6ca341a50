"""The portal's language, and only the portal's; and the per-request memo of roles.

Django's ``LocaleMiddleware`` would also translate what the API and the registry
answer (DRF ships a zh-Hans catalogue: a 405 read “方法 “DELETE” 不被允许。” for a
client sending ``Accept-Language: zh``). Harbor's API answers in English whatever
the client asks, and so does Berth's: requests to the machine paths are served in
``LANGUAGE_CODE`` with no ``Content-Language``/``Vary: Accept-Language``; every
other path gets ``LocaleMiddleware`` unchanged (docs/portal.md)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

from accounts import access

# Harbor's API, the registry protocol, the token service and the CLI login.
MACHINE_PREFIXES = ("/api/", "/v2/", "/service/", "/c/")


def is_machine_path(path: str) -> bool:
    return path == "/v2" or path.startswith(MACHINE_PREFIXES)


class PortalLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        if is_machine_path(request.path_info):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if is_machine_path(request.path_info):
            return response
        return super().process_response(request, response)


class RoleMemoMiddleware:
    """A portal page reads the user's role in a project once
    (``accounts.access.roles_remembered``), however many tabs, actions and rows
    it decides on. The machine paths decide once per request already and are
    left as they are."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_machine_path(request.path_info):
            return self.get_response(request)
        with access.roles_remembered():
            return self.get_response(request)
