"""``manage.py quota_reconcile``: make quota usage what the projects hold."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry.services.quotas import reconcile


class Command(BaseCommand):
    help = (
        "Recount every project's storage usage from its content (each digest once per "
        "project), fold its usage rows into one, and report what was corrected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_ids", nargs="*", type=int, help="only these projects")

    def handle(self, *args: Any, project_ids: list[int], **options: Any) -> None:
        results = reconcile(project_ids or None)
        for r in results:
            if r.correction or r.added or r.removed:
                self.stdout.write(
                    f"project {r.project_id}: usage {r.usage} bytes, corrected by "
                    f"{r.correction:+d} ({r.added} digests charged, {r.removed} released)"
                )
        self.stdout.write(f"ok: {len(results)} projects reconciled")
