"""`manage.py run_periodic`: the cron of the one-command run.

Runs the management commands listed in settings.PERIODIC_JOBS, each at its own interval,
in this process. Production may use real cron lines (see the README) instead.
"""

import logging
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic jobs (expiry, retries, pruning…) at their intervals."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every job once and stop")
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between checks")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="stop after this many seconds"
        )

    def handle(self, *args, once, tick, max_seconds, **options):
        jobs = settings.PERIODIC_JOBS
        next_run = {index: 0.0 for index in range(len(jobs))}
        started = time.monotonic()
        while True:
            now = time.monotonic()
            for index, job in enumerate(jobs):
                if now >= next_run[index]:
                    self._run(job)
                    next_run[index] = now + job["every"]
            if once or (max_seconds is not None and now - started >= max_seconds):
                return
            time.sleep(tick)

    def _run(self, job) -> None:
        name = job["command"]
        try:
            call_command(name, *job.get("args", []), stdout=self.stdout, stderr=self.stderr)
        except SystemExit as exc:
            # Cron-style commands exit non-zero to report findings; keep going.
            if exc.code not in (0, None):
                logger.warning("periodic job %s exited with %s", name, exc.code)
        except Exception:
            logger.exception("periodic job %s failed", name)
