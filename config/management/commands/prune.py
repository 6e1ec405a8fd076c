"""`manage.py prune`: keep the logs bounded.

Deletes, in batches: events older than settings.EVENTS_RETENTION; webhook deliveries older
than settings.WEBHOOK_RETENTION_DAYS (failed ones and unresolved dead ones stay); alerts
resolved more than settings.ALERT_RETENTION_DAYS ago (open ones stay). Run hourly
(settings.PERIODIC_JOBS, or cron). Shows its progress on a terminal and one line per
delete with `-v 2`. Exit status 0 on success, 2 when it could not run (a bad retention
setting or option, database unavailable).
"""

import json
from datetime import timedelta

from django.conf import settings

from core.commands import ConfirmaCommand, rows_watched, usage_error
from core.durations import parse_duration
from notifications.models import Alert, Event
from notifications.services import alerts_prune, events_prune
from payments.models import WebhookDelivery
from payments.services.retention import deliveries_prune

# What is pruned, in order: (key, words for people, model, service).
KINDS = (
    ("events", "events", Event, events_prune),
    ("deliveries", "webhook deliveries", WebhookDelivery, deliveries_prune),
    ("alerts", "resolved alerts", Alert, alerts_prune),
)


class Command(ConfirmaCommand):
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
            raise usage_error("--batch-size must be at least 1.")
        ages = dict(zip(("events", "deliveries", "alerts"), _retentions(), strict=True))
        counts = {}
        for key, words, model, prune in KINDS:
            if dry_run:
                counts[key] = prune(older_than=ages[key], batch_size=batch_size, dry_run=True)
            else:
                counts[key] = self._prune(key, words, model, prune, ages[key], batch_size)
        if options["json"] and not self.quiet:
            self.stdout.write(json.dumps({**counts, "dry_run": dry_run}, sort_keys=True))
            return
        verb = "would prune" if dry_run else "pruned"
        self.summary(
            f"{verb} {counts['events']} events, {counts['deliveries']} webhook deliveries "
            f"and {counts['alerts']} resolved alerts",
            happened=any(counts.values()) and not dry_run,
            **counts,
        )

    def _prune(self, key, words, model, prune, age: timedelta, batch_size: int) -> int:
        with self.progress(label=f"pruned {words}") as progress:
            if progress.enabled:
                progress.total = prune(older_than=age, batch_size=batch_size, dry_run=True)

            def on_delete(rows: int) -> None:
                progress.add(rows)
                self.batch_line(progress, f"{key}: deleted {rows} (total {progress.done})")

            with rows_watched(table=model._meta.db_table, verb="DELETE", on_rows=on_delete):
                return prune(older_than=age, batch_size=batch_size)


def _retentions() -> tuple[timedelta, timedelta, timedelta]:
    try:
        events = parse_duration(settings.EVENTS_RETENTION)
    except ValueError as exc:
        raise usage_error(f"EVENTS_RETENTION: {exc}") from exc
    days = {}
    for name in ("WEBHOOK_RETENTION_DAYS", "ALERT_RETENTION_DAYS"):
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            raise usage_error(f"{name} must be a whole number of days, at least 1.")
        days[name] = timedelta(days=value)
    return events, days["WEBHOOK_RETENTION_DAYS"], days["ALERT_RETENTION_DAYS"]
