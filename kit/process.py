"""What a process needs on disk, made explicitly by the commands that need it,
never at settings import (portal/settings.py only computes values).

:func:`ensure_data_dir` is called by the command line (``manage.py`` and
``berth``, before any command: system checks open the SQLite database), by
``serve`` itself (before it starts any part) and by the test suite. What a
process keeps in memory, and how to reset it, is listed in portal/process.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
from collections.abc import Callable

from django.conf import settings


def ensure_data_dir() -> None:
    """Create what Berth keeps under ``BERTH_DATA_DIR``, if missing: the
    directory, the file broker's folders (with the default broker) and, unless
    ``BERTH_SECRET_KEY`` is set, the secret key (generated once, mode 0600; two
    processes racing both end up with the one written first). This process then
    uses that key too (its settings were read before the file existed)."""
    data = settings.DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            os.makedirs(options[key], exist_ok=True)
    if os.environ.get("BERTH_SECRET_KEY"):
        return
    path = settings.SECRET_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    settings.SECRET_KEY = path.read_text().strip()


_PR_SET_PDEATHSIG = 1


def parent_death_signal(signum: int) -> Callable[[], None]:
    """A function that makes the calling process receive ``signum`` when its
    parent dies (Linux ``prctl``). libc is looked up here, so the returned
    function does nothing but the call: safe as a pre-exec hook after fork."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def set_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signum)

    return set_signal
