"""Scheduled registry jobs (Celery)."""

import datetime
import logging

from celery import shared_task
from django.conf import settings

from registry.services.uploads import uploads_purge

log = logging.getLogger("berth.registry")


@shared_task(acks_late=True)
def purge_stale_uploads() -> int:
    purged = uploads_purge(older_than=datetime.timedelta(seconds=settings.BERTH_UPLOAD_MAX_AGE))
    log.info("purged %d stale upload sessions", purged)
    return purged
