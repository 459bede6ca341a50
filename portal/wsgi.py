"""WSGI entry point.

/v2 (the registry protocol, the hot path) goes to a handler with no middleware:
no sessions, no CSRF, no messages — the views do their own authorization through
registry.oci.access. Everything else goes through Django's full stack.
"""

import gc
import multiprocessing
import os
import time
import weakref
from signal import SIGKILL

from django.conf import settings
from django.core import signals
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.handlers.base import reset_urlconf
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver
from django.utils.log import log_response
from django.utils.module_loading import import_string

from kit.process import parent_death_signal
from portal import bodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class LeanHandlerMixin:
    """A Django handler whose middleware chain is empty and whose URL
    configuration is only the registry's routes.

    It also leaves out what Django does per request through asgiref's
    ``Local`` (a process-wide lock per access): the script prefix (registry
    URLs are absolute, /v2 lives at the root by the protocol) and the
    thread's URL configuration (the resolver is resolved once, here). Under
    many request threads that lock was the hottest spot of a manifest GET: a
    thread that the GIL switched out while holding it stalled all the others
    (docs/benchmarks.md, bench/notes.md).
    """

    urlconf = "registry.oci.urls"

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)
        self._resolver = get_resolver(self.urlconf)

    def get_response(self, request):  # type: ignore[no-untyped-def]
        response = self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        return response

    def resolve_request(self, request):  # type: ignore[no-untyped-def]
        match = self._resolver.resolve(request.path_info)
        request.resolver_match = match
        return match


class RegistryHandler(LeanHandlerMixin, WSGIHandler):
    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        # WSGIHandler.__call__ without set_script_prefix (see the mixin); the
        # rest as Django does it, wsgi.file_wrapper included: a server that has
        # one sends blob files with sendfile (registry/oci/views/blobs.py).
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = self.request_class(environ)
        response = self.get_response(request)
        response._handler_class = self.__class__
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        if getattr(response, "file_to_stream", None) is not None and environ.get(
            "wsgi.file_wrapper"
        ):
            response.file_to_stream.close = response.close
            response = environ["wsgi.file_wrapper"](response.file_to_stream, response.block_size)
        return response


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


def reset_urlconf_in_portal_only(full: WSGIHandler) -> None:
    """Django resets the thread's URL configuration when any request finishes
    (``reset_urlconf`` on ``request_finished``), which takes asgiref's lock
    even for a /v2 request that never set one. Reset it only after the
    requests that do: those of the full stack."""
    if signals.request_finished.disconnect(reset_urlconf):
        full.get_response = _resetting(full.get_response)  # type: ignore[method-assign]


def _resetting(get_response):  # type: ignore[no-untyped-def]
    def wrapped(request):  # type: ignore[no-untyped-def]
        response = get_response(request)
        response._resource_closers.append(reset_urlconf)
        return response

    return wrapped


def cache_request_signal_receivers() -> None:
    """Every request sends ``request_started`` and ``request_finished``, and
    Django's signals look their receivers up under the signal's own lock unless
    they cache them per sender (``use_caching``, which model signals use). The
    sender is the handler class, the same for every request, so caching turns
    that lookup into one dictionary read. Without it the lock was the hottest
    spot left in a manifest GET under 64 connections: a thread switched out
    while holding it stalls every other request thread at the end of its
    response. ``connect`` and ``disconnect`` clear the cache, so receivers
    connected later are still called."""
    for signal in (signals.request_started, signals.request_finished):
        with signal.lock:
            signal.use_caching = True
            signal.sender_receivers_cache = weakref.WeakKeyDictionary()


class BerthApplication:
    def __init__(self) -> None:
        self.full = get_wsgi_application()
        from registry.oci import fast  # needs the apps loaded (get_wsgi_application)

        self.manifest_read = fast.serve
        self.registry = RegistryHandler()
        skip_needless_cache_closing()
        reset_urlconf_in_portal_only(self.full)
        cache_request_signal_receivers()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        registry = is_registry_path(environ.get("PATH_INFO", ""))
        handler = self.registry if registry else self.full
        if bodies.has_body(environ):
            # A slow sender must not hold a web thread (portal/bodies.py).
            return bodies.serve_with_body(handler, environ, start_response)
        if registry:
            # A cached manifest read (registry/oci/fast.py), else the full path.
            fast = self.manifest_read(environ, start_response)
            if fast is not None:
                return fast
        return handler(environ, start_response)


def wait_for_schema() -> None:
    """``serve`` starts the web server while it migrates and bootstraps, and
    names a gate file that exists until then (BERTH_SCHEMA_GATE): the worker
    imports everything first, then waits here (``served_application``) before
    taking any request. The
    supervisor removes the gate whatever happens, and its children die with it."""
    gate = os.environ.get("BERTH_SCHEMA_GATE")
    while gate and os.path.exists(gate):
        time.sleep(0.01)


def tune_collector() -> None:
    """The web worker's garbage collector, set for a server whose requests make
    short-lived objects by the thousand a second.

    - ``gc.freeze()``: what is loaded by now (Django, Berth, their modules:
      ~100,000 objects) lives as long as the process; a full collection no
      longer walks it.
    - A first generation of 50,000 allocations instead of 700: each collection
      moves whatever the requests in flight hold into the older generations,
      and at ~15,000 manifest GETs a second that pushed the worker into full
      collections of 50-90 ms, six in 16 s, each one a stall of every request
      (the p99 of docs/benchmarks.md). Cycles are still collected, a little
      later."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def served_application() -> BerthApplication:
    """The application as ``manage.py serve`` runs it: granian calls this in each
    of its worker processes (``--factory``) before they serve.

    The worker first leaves the terminal's process group, so a Ctrl-C reaches it
    only through granian's main process, as one SIGTERM. A worker that gets the
    terminal's SIGINT and its parent's SIGTERM at once, with a kept-alive
    connection open (docker keeps some), does not stop until granian kills it
    after ``--workers-kill-timeout`` (granian 2.8: "Killing worker-1 after it
    refused to gracefully stop"). It then dies with granian's main process, so a
    kill -9 of the server's process group still stops every part at once."""
    os.setpgid(0, 0)
    parent_death_signal(SIGKILL)()
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # granian died (serve killed it) before the prctl
    wait_for_schema()
    tune_collector()
    return application


application = BerthApplication()
