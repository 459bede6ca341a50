"""WSGI entry point.

/v2 (the registry protocol, the hot path) goes to a handler with no middleware:
no sessions, no CSRF, no messages — the views do their own authorization through
registry.oci.access. Everything else goes through Django's full stack.
"""

import os

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

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


def skip_needless_cache_closing() -> bool:
    """Django closes every cache in use at the end of every request
    (``close_caches`` on ``request_finished``). For backends whose ``close`` is
    the base class's no-op (local memory, dummy, Redis, the database) that is
    pure cost, and not a small one: each ``caches[alias]`` takes the cache
    handler's process-wide lock (asgiref Local), contended by every request
    thread — 14.5 % of the manifest-GET profile (docs/benchmarks.md). Disconnect
    it when no configured backend needs it; keep it otherwise (memcached)."""
    for config in settings.CACHES.values():
        if import_string(config["BACKEND"]).close is not BaseCache.close:
            return False
    return signals.request_finished.disconnect(close_caches)


class BerthApplication:
    def __init__(self) -> None:
        self.full = get_wsgi_application()
        self.registry = RegistryHandler()
        skip_needless_cache_closing()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if is_registry_path(environ.get("PATH_INFO", "")):
            return self.registry(environ, start_response)
        return self.full(environ, start_response)


application = BerthApplication()
