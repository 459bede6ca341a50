"""What each process of `serve` loads at start, and what it leaves for later
(docs/benchmarks.md, idle memory): the LDAP client until a directory is enabled,
the admin's modules in the Celery children, Celery in granian's main process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SETUP = (
    "import os, sys, json; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'\n"
    "from kit.process import ensure_data_dir; ensure_data_dir()\n"
    "import django; django.setup()\n"
)
WATCHED = ("ldap", "django_auth_ldap", "accounts.directory", "accounts.admin", "celery")


def loaded(tmp_path: Path, code: str, **env: str) -> set[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABASE_URL"))}
    script = code + f"print(json.dumps([m for m in {WATCHED!r} if m in sys.modules]))\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**clean, "BERTH_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.dbindependent
def test_the_web_process_loads_no_ldap_client_without_a_directory(tmp_path):
    """Django set up, every URL and every authentication backend loaded (what
    the first requests do), and a password checked: still no python-ldap."""
    code = SETUP + (
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from django.urls import get_resolver; get_resolver().url_patterns\n"
        "from django.contrib.auth import authenticate\n"
        "assert authenticate(None, username='nobody', password='wrong') is None\n"
    )
    found = loaded(tmp_path, code)
    assert not found & {"ldap", "django_auth_ldap", "accounts.directory"}, found
    assert "accounts.admin" in found  # the web process serves the admin


@pytest.mark.dbindependent
def test_the_celery_children_skip_the_admins_modules(tmp_path):
    found = loaded(tmp_path, SETUP, BERTH_PROCESS_ROLE="worker")
    assert "accounts.admin" not in found
    assert "celery" in found


@pytest.mark.dbindependent
def test_granians_main_process_loads_no_celery(tmp_path):
    assert loaded(tmp_path, "import sys, json\nimport kit.web\n") == set()
