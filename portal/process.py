"""A process's explicit state: the data directory it needs, and the state it
keeps in memory, with one way to reset each.

Settings only compute values (portal/settings.py); what must exist on disk is
made here, by the commands that need it, never at import:

- ``kit.process.ensure_data_dir`` — called by the command line (``manage.py``
  and ``berth``, before any command: system checks open the SQLite database),
  by ``serve`` itself (before it starts any part) and by the test suite.

Module-level state of a process, each with its documented reset (tests call
these rather than reaching into private attributes; :func:`reset` calls all):

- ``accounts.services.tokens.reset()`` — the signing keys loaded once per
  process and the tokens already verified;
- ``registry.services.uploads.reset()`` — running digests of recent uploads;
- ``registry.services.cache.reset()`` — manifest-cache invalidations still to
  retry after a shared-cache outage;
- ``audit.services.discard()`` — registry audit events buffered, not written;
- ``accounts.services.usage.discard()`` — personal access tokens' last uses
  noted, not written;
- ``kit.cache.breaker.reset()`` — caches skipped after a recent failure;
- ``kit.events.reset()`` — when this process last asked for event delivery.
"""

from __future__ import annotations


def reset() -> None:
    """Forget everything this process keeps in memory (the list above): what a
    freshly started process has."""
    from accounts.services import tokens, usage
    from audit import services as audit
    from kit import events
    from kit.cache import breaker
    from registry.services import cache, uploads

    tokens.reset()
    uploads.reset()
    cache.reset()
    audit.discard()
    usage.discard()
    breaker.reset()
    events.reset()
