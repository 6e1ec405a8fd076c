"""`manage.py run_periodic`: the scheduler of the periodic jobs (settings.PERIODIC_JOBS).

Every node may run it: each run of a job is claimed through the database first
(`periodic_claim`), so with any number of nodes a job runs once per period, on whichever
node claims it, and keeps running while any node lives. Production may use real cron
lines (see the README) instead; `RUN_PERIODIC=false` then keeps `scripts/serve.sh` from
starting this.

It prints nothing. Each job runs quietly and logs what it did, through the logging
configuration under the `confirma.jobs` logger with the job's name, only when something
happened; a job that found problems or could not run is logged as a warning. With
`--once`, the exit status is 1 when a job found problems or failed, 2 when the database
was unreachable.
"""

import io
import logging
import os
import socket
import time

from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections

from config.services import periodic_claim, periodic_finish, periodic_job_name
from core.commands import (
    EXIT_PROBLEMS,
    EXIT_UNUSABLE,
    ConfirmaCommand,
    job_context,
    jobs_logger,
    problems_found,
    usage_error,
)

# How a job's run ended, as recorded on its PeriodicJob row.
OK, FINDINGS, FAILED = "ok", "findings", "failed"


class Command(ConfirmaCommand):
    help = (
        "Run the periodic jobs (expiry, retries, pruning…) at their intervals, once across nodes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="run every job that is due once, then stop"
        )
        parser.add_argument(
            "--tick", type=float, default=1.0, help="seconds between checks (default 1)"
        )
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="stop after this many seconds"
        )

    def handle(self, *args, once, tick, max_seconds, **options):
        if tick <= 0 or (max_seconds is not None and max_seconds < 0):
            raise usage_error("--tick must be positive and --max-seconds at least 0.")
        node = f"{socket.gethostname()}:{os.getpid()}"
        started = time.monotonic()
        while True:
            outcomes = {
                periodic_job_name(job): self._maybe_run(job, node) for job in settings.PERIODIC_JOBS
            }
            now = time.monotonic()
            if once or (max_seconds is not None and now - started >= max_seconds):
                break
            close_old_connections()  # a restarted database: connect again next tick
            time.sleep(tick)
        if once:
            self._exit(outcomes)

    @staticmethod
    def _exit(outcomes: dict) -> None:
        unreachable = sorted(name for name, status in outcomes.items() if status == "unreachable")
        if unreachable:
            raise CommandError(
                f"the database is unreachable: {', '.join(unreachable)} not run",
                returncode=EXIT_UNUSABLE,
            )
        bad = sorted(name for name, status in outcomes.items() if status in (FINDINGS, FAILED))
        if bad:
            raise problems_found(f"jobs that found problems or failed: {', '.join(bad)}")

    def _maybe_run(self, job, node: str) -> str | None:
        """Run `job` if it is due and this node claims it; how it ended, None when not run."""
        name = periodic_job_name(job)
        with job_context(name):
            return self._claim_and_run(job, name, node)

    def _claim_and_run(self, job, name: str, node: str) -> str | None:
        try:
            if not periodic_claim(name=name, every=job["every"], node=node):
                return None  # not due, or another node has this period's run
        except DatabaseError as exc:
            jobs_logger.warning("%s: cannot claim (%s)", name, exc.__class__.__name__)
            return "unreachable"
        status = self._run(job, name)
        try:
            periodic_finish(name=name, status=status)
        except DatabaseError:
            jobs_logger.exception("%s: cannot record its end", name)
        return status

    def _run(self, job, name: str) -> str:
        """Run one job quietly: what it did is logged by the job itself (`summary()`)."""
        command = job["command"]
        output = io.StringIO()
        options = {"stdout": output, "stderr": output, "verbosity": 0}
        status, level, reason = OK, logging.DEBUG, ""
        try:
            target = load_command_class(get_commands()[command], command)
            if isinstance(target, ConfirmaCommand):
                options["job"] = name
            call_command(target, *job.get("args", []), **options)
        except SystemExit as exc:
            # Cron-style commands exit non-zero to report findings; keep going.
            if exc.code not in (0, None):
                status, level, reason = FINDINGS, logging.WARNING, f"exit status {exc.code}"
        except CommandError as exc:
            found = exc.returncode == EXIT_PROBLEMS
            status = FINDINGS if found else FAILED
            level = logging.WARNING
            reason = f"{'found problems' if found else 'could not run'}: {exc}"
        except Exception:
            jobs_logger.exception("%s: failed", name)
            status = FAILED
        text = output.getvalue().strip()
        if reason or text:
            # What a job printed anyway (a command that does not log its summary) stays
            # out of the logs unless the job went wrong.
            jobs_logger.log(
                level,
                "%s: %s",
                name,
                "; ".join(part for part in (reason, text) if part),
                extra={"status": status},
            )
        return status
