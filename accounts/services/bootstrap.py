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
        first_start = not User.objects.filter(pk=1).exists()
        if first_start:
            _create_admin()
        admin = User.objects.get(pk=1)
        if not Project.objects.filter(name="library").exists():
            Project.objects.create(name="library", public=True, owner=admin)
    ensure_signing_key()
    if not first_start:
        _warn_if_admin_password_ignored(admin)


def _warn_if_admin_password_ignored(admin: User) -> None:
    """BERTH_ADMIN_PASSWORD sets the password on the first start only. Set on a
    later start to another password, it is ignored: say so, or a ``docker
    login`` with it fails with nothing in the log. (One password check, outside
    the transaction, only when the variable is set.)"""
    password = os.environ.get("BERTH_ADMIN_PASSWORD", "")
    if not password or admin.check_password(password):
        return
    log.warning(
        "BERTH_ADMIN_PASSWORD is ignored: the administrator '%s' already exists and "
        "has another password (the variable sets it on the first start only). Log in "
        "with the current password, or change it: python manage.py changepassword %s "
        "(or PUT /api/v2.0/users/1/password)",
        admin.username,
        admin.username,
    )


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
        # The path, never the password: logs are copied and kept.
        log.warning(
            "created the system administrator 'admin' with a generated password, "
            "written to %s (change it, then delete the file)",
            path,
        )
