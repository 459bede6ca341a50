"""WSGI entry point.

/v2 (the registry protocol, the hot path) goes to a handler with no middleware:
no sessions, no CSRF, no messages — the views do their own authorization through
registry.oci.access. Everything else goes through Django's full stack.
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class LeanHandlerMixin:
    """A Django handler whose middleware chain is empty and whose URL
    configuration is only the registry's routes."""

    urlconf = "registry.oci.urls"

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def get_response(self, request):  # type: ignore[no-untyped-def]
        request.urlconf = self.urlconf
        return super().get_response(request)  # type: ignore[misc]


class RegistryHandler(LeanHandlerMixin, WSGIHandler):
    pass


def is_registry_path(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


class BerthApplication:
    def __init__(self) -> None:
        self.full = get_wsgi_application()
        self.registry = RegistryHandler()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if is_registry_path(environ.get("PATH_INFO", "")):
            return self.registry(environ, start_response)
        return self.full(environ, start_response)


application = BerthApplication()
