"""First start: the system administrator (user id 1, ``admin``), the public
``library`` project and the token signing key. There is no default password."""

from __future__ import annotations

import logging
import os
import secrets
import string
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.color import no_style
from django.db import connections, transaction

from accounts.models import Project, User
from accounts.passwords import POLICY, password_ok
from accounts.services.tokens import ensure_signing_key

log = logging.getLogger("berth.accounts")


def _generated_password() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(24))
        if password_ok(value):
            return value


def bootstrap() -> None:
    with transaction.atomic():
        if not User.objects.filter(pk=1).exists():
            _create_admin()
        admin = User.objects.get(pk=1)
        if not Project.objects.filter(name="library").exists():
            Project.objects.create(name="library", public=True, owner=admin)
    ensure_signing_key()


def _create_admin() -> None:
    password = os.environ.get("BERTH_ADMIN_PASSWORD", "")
    generated = not password
    if generated:
        password = _generated_password()
    elif not password_ok(password):
        raise ImproperlyConfigured(f"BERTH_ADMIN_PASSWORD must have {POLICY}")
    admin = User(pk=1, username="admin", is_superuser=True, is_staff=True, realname="admin")
    admin.set_password(password)
    admin.save()
    # An explicit id does not advance PostgreSQL's identity sequence: move it past
    # the admin, or the next user created gets id 1 too (a no-op on SQLite).
    connection = connections[User.objects.db]
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [User]):
            cursor.execute(sql)
    if generated:
        path = Path(settings.DATA_DIR) / "initial-admin-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        log.warning(
            "created the system administrator 'admin' with password %s "
            "(also written to %s; change it, then delete the file)",
            password,
            path,
        )
