"""The web server process of ``manage.py serve``: granian's command line
(``python -m kit.web`` takes granian's options), without one start-up warning.
It lives outside the portal package, whose import loads Celery: granian's main
process needs neither (~5 MiB less at idle, docs/benchmarks.md).

granian warns whenever a worker may run more Python threads than twice the
cores plus one. Berth runs ``BERTH_WEB_THREADS`` (16) on purpose: slow clients
each hold a thread while they send or receive, and the ``/v2`` hot path takes
no process-wide lock (docs/configuration.md). Every other granian message stays.
"""

from __future__ import annotations

import logging

from granian.cli import entrypoint


class _NoThreadCountAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Configuration allows spawning up to")


def main() -> None:
    # granian's own logger; its logging set-up keeps a logger's filters.
    logging.getLogger("_granian").addFilter(_NoThreadCountAdvice())
    entrypoint()


if __name__ == "__main__":
    main()
