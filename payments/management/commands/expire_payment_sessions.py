"""`manage.py expire_payment_sessions`: close pending sessions whose expiry has passed.

Run every minute (settings.PERIODIC_JOBS, or cron). Exit status 0 when the run finished,
2 when it could not run (bad option, database unavailable).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from payments.services.expiry import sessions_expire_due


class Command(BaseCommand):
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
            raise CommandError("--batch-size must be at least 1.", returncode=2)
        try:
            result = sessions_expire_due(batch_size=batch_size)
        except DatabaseError as exc:
            raise CommandError(
                f"Could not expire payment sessions: {exc.__class__.__name__}: {exc}".strip(),
                returncode=2,
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"expired": result.expired, "batches": result.batches}))
        else:
            self.stdout.write(
                f"expired {result.expired} payment sessions in {result.batches} batches"
            )
