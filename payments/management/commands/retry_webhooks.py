"""`manage.py retry_webhooks`: process webhook deliveries that are due and waiting: failed
ones whose next attempt has come, claims whose worker died (their lease ended), and new
ones no worker has taken within WEBHOOK_LEASE_SECONDS (newer ones are the workers'; it
claims like a worker: never one a worker holds).

The webhook workers (`process_webhooks`) do this by themselves; run every 30 seconds
(settings.PERIODIC_JOBS, or cron) it is their safety net, and it checks the backlog: an
alert when the oldest waiting delivery is older than WEBHOOK_BACKLOG_ALERT_SECONDS.
Exit status 0 when every due delivery now succeeded (or none was due), 1 when some
failed again, were rejected or went dead (out of attempts; staff are alerted) or the
backlog is older than the setting, 2 when the
command could not run (bad option, database unavailable).
"""

import json
import sys

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError

from core.commands import ConfirmaCommand, usage_error
from payments.services.deliveries import backlog_check, deliveries_run


class Command(ConfirmaCommand):
    help = "Retry failed webhook deliveries that are due, with back-off, until they go dead."

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=500, help="most deliveries retried in one run"
        )
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args, limit, **options):
        if limit < 1:
            raise usage_error("--limit must be at least 1.")
        try:
            report = deliveries_run(
                limit=min(limit, settings.WEBHOOK_BATCH_SIZE),
                max_batches=-(-limit // min(limit, settings.WEBHOOK_BATCH_SIZE)),
                safety_net=True,
            )
            waiting = backlog_check()
        except DatabaseError as exc:
            raise CommandError(
                f"Could not retry webhook deliveries: {exc.__class__.__name__}: {exc}".strip(),
                returncode=2,
            ) from exc
        counts = report.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(counts, sort_keys=True))
        else:
            self.stdout.write(
                "retried {retried} webhook deliveries: {succeeded} succeeded, {failed} failed "
                "again, {rejected} rejected, {dead} dead".format(**counts)
            )
        behind = waiting["oldest_seconds"] > settings.WEBHOOK_BACKLOG_ALERT_SECONDS
        if behind:
            self.stdout.write(
                f"{waiting['waiting']} webhook deliveries waiting, the oldest for "
                f"{waiting['oldest_seconds']} s: are the webhook workers running?"
            )
        if not report.all_succeeded or behind:
            # A finding, not a crash: cron and run_periodic see the status, nothing else.
            sys.exit(1)
