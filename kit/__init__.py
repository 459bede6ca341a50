"""Berth's shared kit: the pieces every app stands on and that import no app.

The bottom layer of the dependency order (docs/architecture.md): the client's
address behind trusted proxies (``net``), the caches (``cache``), readiness and
drain (``health``), database helpers (``db``: SQLite's write queue, group
commit) and the domain errors every app raises (``errors``). Nothing here may
import ``audit``, ``accounts``, ``registry``, ``replication`` or ``portal``;
``make lint`` checks it (import-linter, pyproject.toml).
"""
