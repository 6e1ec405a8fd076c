"""Ask providers about sessions we have not heard of (lost webhooks). Exit 0 when every
lookup worked, 1 when some failed, 2 when it could not run."""

import json
import logging
import sys

from core.commands import ConfirmaCommand, usage_error
from payments.services.polling import providers_poll


class Command(ConfirmaCommand):
    help = "Look up pending/processing payments at their provider and apply the answer."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="seconds since creation (default PROVIDER_POLL_AFTER_SECONDS)",
        )
        parser.add_argument(
            "--limit", type=int, default=200, help="most payments looked up (default 200)"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        if options["limit"] < 1 or (options["older_than"] or 0) < 0:
            raise usage_error("--limit must be ≥ 1 and --older-than ≥ 0")
        report = providers_poll(older_than_seconds=options["older_than"], limit=options["limit"])
        if self.quiet:
            self.summary(
                f"checked {report.checked}: {len(report.changed)} changed, "
                f"{len(report.not_found)} unknown at the provider, {len(report.failed)} failed",
                happened=bool(report.changed or report.failed),
                level=logging.WARNING if report.failed else logging.INFO,
                checked=report.checked,
                changed=report.changed,
                failed=report.failed,
            )
        elif options["json"]:
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
