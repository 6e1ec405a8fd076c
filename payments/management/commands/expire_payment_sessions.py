"""`manage.py expire_payment_sessions`: close pending sessions whose expiry has passed.

Run every minute (settings.PERIODIC_JOBS, or cron). Shows its progress on a terminal and
one line per batch with `-v 2`. Exit status 0 when the run finished, 2 when it could not
run (bad option, database unavailable).
"""

import json

from core.commands import ConfirmaCommand, rows_watched, usage_error
from payments.models import PaymentSession
from payments.services.expiry import sessions_expire_due


class Command(ConfirmaCommand):
    help = (
        "Expire pending payment sessions whose expiry has passed, in batches; releases "
        "the coupons they held and tells customers still waiting."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="sessions per transaction (default 1000)",
        )
        parser.add_argument(
            "--json", action="store_true", help='print {"expired": n, "batches": b}'
        )

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise usage_error("--batch-size must be at least 1.")
        batches = 0

        with self.progress(label="expired payment sessions") as progress:

            def on_batch(rows: int) -> None:
                nonlocal batches
                batches += 1
                progress.add(rows)
                self.batch_line(
                    progress, f"batch {batches}: expired {rows} (total {progress.done})"
                )

            # Each batch of the service is one UPDATE of the sessions it expires.
            table = PaymentSession._meta.db_table
            with rows_watched(table=table, verb="UPDATE", on_rows=on_batch):
                result = sessions_expire_due(batch_size=batch_size)
        if options["json"] and not self.quiet:
            self.stdout.write(json.dumps({"expired": result.expired, "batches": result.batches}))
            return
        self.summary(
            f"expired {result.expired} payment sessions in {result.batches} batches",
            happened=bool(result.expired),
            expired=result.expired,
            batches=result.batches,
        )
