"""Identity jobs (Celery)."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from accounts.models import IdentityProvider
from accounts.services import providers
from accounts.services.auth import _call

log = logging.getLogger("berth.ldap")


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def refresh_directories(scheduled: bool = False) -> dict[str, dict[str, int]]:
    """Read the users of every enabled LDAP provider again (their groups, the
    admin flag, their attributes). ``scheduled``: sent by every replica's
    scheduler each BERTH_LDAP_REFRESH_INTERVAL; the first to take the period
    in the shared cache runs it (an atomic ``add``), the others skip."""
    interval = max(settings.BERTH_LDAP_REFRESH_INTERVAL, 1)
    if scheduled:
        period = int(time.time() // interval)
        if not _call("add", f"ldap-refresh:{period}", 1, interval * 2):
            log.info("refresh-directories: period %d taken by another scheduler", period)
            return {}
    if not providers.any_enabled(IdentityProvider.Kind.LDAP):
        return {}
    from accounts import directory  # python-ldap: only where a directory is enabled

    done = directory.refresh_all()
    log.info("refresh-directories: %s", done)
    return done
