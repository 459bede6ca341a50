"""GET and HEAD of a manifest, answered without Django's request machinery.

Every ``docker pull`` (and every Kubernetes node checking its images) starts
with this read, and in the full path Python spends ~70 µs on it: Django's
request object, the request signals, the URL resolver, the dispatch wrapper,
the response object. The answer itself needs a dictionary read or two.

The fast path answers only when everything it needs is already in this
process's memory:

- the path is a manifest's (the route of registry/oci/urls.py), its name is a
  valid repository name and the raw request line hides no encoded separator;
- the ``Authorization`` header holds a Bearer token this process has verified
  before, and the principal it names is known active (``known_bearer``);
- the token grants ``pull`` on the repository;
- the manifest is in the manifest cache (registry/services/cache.py), whose
  generations keep it exact.

Anything else (no credentials, Basic, a token not seen yet, a cache miss, a
write method, any doubt) returns None, and the request takes the full path
(registry/oci/dispatch.py), which answers, refuses or challenges, and fills the
caches for the next request. So the fast path never refuses anything: it only
answers what the full path would answer the same way, pull audit included
(tests/registry/test_fast_path.py compares the two). It touches no database
connection, which is why it can skip the request signals that manage them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from accounts.identity import known_bearer
from accounts.services.tokens import token_allows
from registry.oci.access import Principal
from registry.oci.dispatch import API_VERSION, raw_path_ok
from registry.oci.views.manifests import audit_pull, content_headers
from registry.reference import is_name
from registry.services.manifests import manifest_cached

# registry/oci/urls.py's manifest route, on PATH_INFO (which keeps its "/").
_MANIFEST = re.compile(r"/v2/(.+?)/manifests/([^/]+)")


def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """The response to a cached manifest read, or None: take the full path."""
    method = environ.get("REQUEST_METHOD")
    if method != "GET" and method != "HEAD":
        return None
    match = _MANIFEST.fullmatch(environ.get("PATH_INFO", ""))
    if match is None:
        return None
    name, reference = match.groups()
    if not reference.isascii() or not is_name(name) or not raw_path_ok(environ):
        return None
    who = known_bearer(environ)
    if who is None or not token_allows(who.claims or {}, "repository", name, "pull"):
        return None
    content = manifest_cached(repository_name=name, reference=reference)
    if content is None:
        return None
    if method == "GET":
        audit_pull(Principal(who.actor, who.client, who.claims), name, reference)
    headers = content_headers(content.digest, content.media_type, len(content.payload))
    start_response("200 OK", [*headers, API_VERSION])
    return [content.payload] if method == "GET" else []
