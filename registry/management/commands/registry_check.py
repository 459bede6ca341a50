"""``manage.py registry_check``: do the database and blob storage agree?"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.services.check import registry_check


class Command(BaseCommand):
    help = (
        "Verify that every blob row has its bytes and they hash to the digest, every "
        "manifest references content of its repository, and every tag resolves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sample",
            type=float,
            default=1.0,
            help="fraction of blobs to re-hash (0..1; sizes are always checked)",
        )

    def handle(self, *args: Any, sample: float, **options: Any) -> None:
        report = registry_check(sample=sample)
        for warning in report.warnings:
            self.stdout.write(f"warning: {warning}")
        for error in report.errors:
            self.stdout.write(f"error: {error}")
        summary = (
            f"{report.blobs_hashed} blobs hashed, {report.manifests} manifests, "
            f"{report.tags} tags: {len(report.errors)} errors, {len(report.warnings)} warnings"
        )
        if not report.ok:
            raise CommandError(summary)
        self.stdout.write(f"ok: {summary}")
