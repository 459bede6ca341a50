"""The Celery application: Berth's job worker and scheduler."""

import os
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("berth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class ThreadedBeat(bootsteps.StartStopStep):
    """Celery beat as a thread of the worker, when ``BERTH_WORKER_BEAT`` names
    the schedule file (``manage.py serve`` in the embedded default, where exactly
    one worker runs). ``celery worker --beat`` would fork a process for it: the
    same Django in memory a second time."""

    label = "ThreadedBeat"
    conditional = True

    def __init__(self, w: Any, **kwargs: Any) -> None:
        self.schedule = os.environ.get("BERTH_WORKER_BEAT", "")
        self.enabled = bool(self.schedule)
        super().__init__(w, **kwargs)

    def create(self, w: Any) -> Any:
        from celery.beat import EmbeddedService

        return EmbeddedService(w.app, thread=True, schedule_filename=self.schedule)


app.steps["worker"].add(ThreadedBeat)


def readiness_check() -> None:
    """Readiness (kit.health, ``BERTH_READINESS_CHECKS``): the broker answers."""
    from django.conf import settings

    with app.connection_for_write(connect_timeout=settings.BERTH_READY_TIMEOUT) as conn:
        conn.connect()
        conn.default_channel  # noqa: B018 - opening a channel talks to the broker
