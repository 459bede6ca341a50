"""``make run`` on a fresh checkout says what it does while it installs."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO_ROOT


def test_make_run_shows_what_it_installs():
    """The install step's commands (make -n, nothing run): an announcement
    first, and pip with its progress, not -q (35 s of silence before)."""
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", ".venv/.berth-run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0].startswith('echo "== make run: installing Berth')
    pip = next(line for line in out if "pip install" in line)
    assert " -q" not in pip and "--progress-bar on" in pip
