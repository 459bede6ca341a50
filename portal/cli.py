"""The ``berth`` console command: ``berth serve`` = ``manage.py serve``, and any
other management command (``berth registry_check``, ``berth migrate`` …)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    from kit.process import ensure_data_dir

    ensure_data_dir()  # as manage.py does

    execute_from_command_line(["berth", *sys.argv[1:]])
