"""`manage.py prune`: keep the logs bounded.

Deletes, in batches: events older than settings.EVENTS_RETENTION; webhook deliveries older
than settings.WEBHOOK_RETENTION_DAYS (failed ones and unresolved dead ones stay); alerts
resolved more than settings.ALERT_RETENTION_DAYS ago (open ones stay). Run hourly
(settings.PERIODIC_JOBS, or cron). Exit status 0 on success, 2 when it could not run (a
bad retention setting or option, database unavailable).
"""

import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from config.durations import parse_duration
from notifications.services import alerts_prune, events_prune
from payments.services.retention import deliveries_prune


class Command(BaseCommand):
    help = "Delete old events, webhook deliveries and resolved alerts past their retention."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="rows per delete (default 1000)"
        )

    def handle(self, *args, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.", returncode=2)
        events_age, deliveries_age, alerts_age = _retentions()
        try:
            counts = {
                "events": events_prune(
                    older_than=events_age, batch_size=batch_size, dry_run=dry_run
                ),
                "deliveries": deliveries_prune(
                    older_than=deliveries_age, batch_size=batch_size, dry_run=dry_run
                ),
                "alerts": alerts_prune(
                    older_than=alerts_age, batch_size=batch_size, dry_run=dry_run
                ),
            }
        except DatabaseError as exc:
            raise CommandError(
                f"Could not prune: {exc.__class__.__name__}: {exc}".strip(), returncode=2
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps({**counts, "dry_run": dry_run}, sort_keys=True))
        else:
            verb = "would prune" if dry_run else "pruned"
            self.stdout.write(
                f"{verb} {counts['events']} events, {counts['deliveries']} webhook deliveries "
                f"and {counts['alerts']} resolved alerts"
            )


def _retentions() -> tuple[timedelta, timedelta, timedelta]:
    try:
        events = parse_duration(settings.EVENTS_RETENTION)
    except ValueError as exc:
        raise CommandError(f"EVENTS_RETENTION: {exc}", returncode=2) from exc
    days = {}
    for name in ("WEBHOOK_RETENTION_DAYS", "ALERT_RETENTION_DAYS"):
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            raise CommandError(f"{name} must be a whole number of days, at least 1.", returncode=2)
        days[name] = timedelta(days=value)
    return events, days["WEBHOOK_RETENTION_DAYS"], days["ALERT_RETENTION_DAYS"]
