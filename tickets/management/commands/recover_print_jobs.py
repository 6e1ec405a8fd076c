"""`manage.py recover_print_jobs`: take back print jobs a dead worker left behind.

Run every 15 seconds (settings.PERIODIC_JOBS, or cron). A job left `sending` longer than
an attempt can last may already have come out of the printer: it is re-queued marked
REPRINT, the operators told (or, after its last attempt, failed and alerted); a `queued`
job whose task was lost is queued again, unmarked. Exit status 0, 1 when a job had to be
failed (its ticket is in PRINT_ERROR, staff alerted), 2 when it could not run (bad
option, database unavailable).
"""

import logging

from core.commands import ConfirmaCommand, problems_found, usage_error
from tickets.services import print_jobs_recover, print_lease_seconds


class Command(ConfirmaCommand):
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
            raise usage_error("--older-than must be positive.")
        report = print_jobs_recover(older_than=older_than)
        lease = print_lease_seconds() if older_than is None else older_than
        requeued, failed = len(report.requeued), len(report.failed)
        self.summary(
            f"print jobs abandoned for more than {lease:g} s: "
            f"{requeued} re-queued, {failed} failed",
            happened=bool(requeued or failed),
            level=logging.WARNING if failed else logging.INFO,
            requeued=requeued,
            failed=failed,
        )
        if failed:
            raise problems_found(f"{failed} print job(s) failed after their last attempt.")
