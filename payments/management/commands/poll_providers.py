"""Ask providers about sessions we have not heard of (lost webhooks). Exit 0 when every
lookup worked, 1 when some failed, 2 when it could not run."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from payments.services.polling import providers_poll


class Command(BaseCommand):
    help = "Look up pending/processing payments at their provider and apply the answer."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="seconds since creation (default PROVIDER_POLL_AFTER_SECONDS)",
        )
        parser.add_argument("--limit", type=int, default=200)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["limit"] < 1 or (options["older_than"] or 0) < 0:
            raise CommandError("--limit must be ≥ 1 and --older-than ≥ 0", returncode=2)
        try:
            report = providers_poll(
                older_than_seconds=options["older_than"], limit=options["limit"]
            )
        except DatabaseError as exc:
            raise CommandError(f"could not run: {exc.__class__.__name__}", returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.__dict__))
        else:
            self.stdout.write(
                f"checked {report.checked}: {len(report.changed)} changed, "
                f"{report.unchanged} unchanged, {len(report.not_found)} unknown at the provider, "
                f"{len(report.failed)} failed"
            )
            for reference in report.changed:
                self.stdout.write(f"  changed {reference}")
            for reference, error in report.failed.items():
                self.stdout.write(f"  failed  {reference}: {error}")
        if report.failed:
            sys.exit(1)
