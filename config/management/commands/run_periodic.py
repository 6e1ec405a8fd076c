"""`manage.py run_periodic`: the scheduler of the periodic jobs (settings.PERIODIC_JOBS).

Every node may run it: each run of a job is claimed through the database first
(`periodic_claim`), so with any number of nodes a job runs once per period, on whichever
node claims it, and keeps running while any node lives. Production may use real cron
lines (see the README) instead; `RUN_PERIODIC=false` then keeps `scripts/serve.sh` from
starting this.
"""

import logging
import os
import socket
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from config.services import periodic_claim, periodic_finish, periodic_job_name

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (expiry, retries, pruning…) at their intervals, once across nodes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="run every job that is due once, then stop"
        )
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between checks")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="stop after this many seconds"
        )

    def handle(self, *args, once, tick, max_seconds, **options):
        node = f"{socket.gethostname()}:{os.getpid()}"
        started = time.monotonic()
        while True:
            for job in settings.PERIODIC_JOBS:
                self._maybe_run(job, node)
            now = time.monotonic()
            if once or (max_seconds is not None and now - started >= max_seconds):
                return
            close_old_connections()  # a restarted database: connect again next tick
            time.sleep(tick)

    def _maybe_run(self, job, node: str) -> None:
        name = periodic_job_name(job)
        try:
            if not periodic_claim(name=name, every=job["every"], node=node):
                return  # not due, or another node has this period's run
        except DatabaseError as exc:
            logger.warning("periodic job %s: cannot claim (%s)", name, exc)
            return
        status = self._run(job)
        try:
            periodic_finish(name=name, status=status)
        except DatabaseError:
            logger.exception("periodic job %s: cannot record its end", name)

    def _run(self, job) -> str:
        name = job["command"]
        try:
            call_command(name, *job.get("args", []), stdout=self.stdout, stderr=self.stderr)
        except SystemExit as exc:
            # Cron-style commands exit non-zero to report findings; keep going.
            if exc.code not in (0, None):
                logger.warning("periodic job %s exited with %s", name, exc.code)
                return "findings"
        except Exception:
            logger.exception("periodic job %s failed", name)
            return "failed"
        return "ok"
