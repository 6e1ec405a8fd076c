"""`manage.py recover_print_jobs`: take back print jobs a dead worker left behind.

Run every 15 seconds (settings.PERIODIC_JOBS, or cron). A job left `sending` longer than
an attempt can last may already have come out of the printer: it is re-queued marked
REPRINT, the operators told (or, after its last attempt, failed and alerted); a `queued`
job whose task was lost is queued again, unmarked. Exit status 0, or 2 when the database
is unavailable.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from tickets.services import print_jobs_recover, print_lease_seconds


class Command(BaseCommand):
    help = "Re-queue or fail print jobs abandoned by a worker that stopped mid-job."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds after which an attempt counts as abandoned "
            "(default: 3 × PRINT_TIMEOUT_SECONDS + 10)",
        )

    def handle(self, *args, older_than, **options):
        if older_than is not None and older_than <= 0:
            raise CommandError("--older-than must be positive.", returncode=2)
        try:
            report = print_jobs_recover(older_than=older_than)
        except DatabaseError as exc:
            raise CommandError(
                f"Could not recover print jobs: {exc.__class__.__name__}: {exc}", returncode=2
            ) from exc
        lease = print_lease_seconds() if older_than is None else older_than
        self.stdout.write(
            f"print jobs abandoned for more than {lease:g} s: "
            f"{len(report.requeued)} re-queued, {len(report.failed)} failed"
        )
