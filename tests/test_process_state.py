"""Settings create nothing; the start-up path makes the data directory and the
secret key, once, and every process then reads the same key."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

SHOW = "import django; django.setup(); from django.conf import settings as s; print(s.{})"


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_settings_create_nothing_and_migrate_makes_the_data_dir(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABASE_URL"))}
    env.update(BERTH_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="portal.settings")
    assert run(env, "-c", SHOW.format("DATA_DIR")) == str(data)
    assert not data.exists()

    run(env, "manage.py", "migrate", "-v0")
    key_file = data / "secret-key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert (data / "berth.sqlite3").is_file()
    assert all((data / "queue" / sub).is_dir() for sub in ("in", "processed", "control"))
    key = key_file.read_text().strip()
    assert len(key) >= 50
    # Every later process reads that key; a second migrate keeps it.
    run(env, "manage.py", "migrate", "-v0")
    assert key_file.read_text().strip() == key
    assert run(env, "-c", SHOW.format("SECRET_KEY")) == key


def test_the_variable_wins_and_no_key_file_is_written(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABASE_URL"))}
    env.update(
        BERTH_DATA_DIR=str(data),
        BERTH_SECRET_KEY="k" * 50,
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    run(env, "manage.py", "migrate", "-v0")
    assert not (data / "secret-key").exists()
    assert run(env, "-c", SHOW.format("SECRET_KEY")) == "k" * 50
