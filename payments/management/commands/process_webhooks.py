"""`manage.py process_webhooks`: a webhook worker.

Claims stored deliveries in batches (oldest first, `FOR UPDATE SKIP LOCKED`, with a lease)
and confirms them through the one confirmation path (`payments.services.deliveries`). It
sleeps until the intake wakes it (`payments.services.wake`: a Redis PUBLISH, or PostgreSQL's
NOTIFY without Redis), so a delivery is taken the moment it is stored; between wake-ups it
looks every WEBHOOK_WORKER_IDLE_SECONDS anyway, for retries that came due and claims whose
worker died. On SQLite (the one-command demo) it looks every 0.2 seconds.

Run as many as you like, on any number of nodes: they never take the same delivery.
SIGTERM or Ctrl+C stops it after the batch in hand. Exit status 0 when it stops, 2 when it
could not start (bad option, database unreachable).
"""

import logging
import signal
import time

from django.conf import settings
from django.db import DatabaseError, connection

from core.commands import ConfirmaCommand, usage_error
from payments.services.deliveries import deliveries_run, worker_name
from payments.services.wake import wake_listener

logger = logging.getLogger(__name__)


class Command(ConfirmaCommand):
    help = "Process webhook deliveries as they arrive (a webhook worker; run one or more)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch", type=int, default=None, help="deliveries per batch (WEBHOOK_BATCH_SIZE)"
        )
        parser.add_argument(
            "--once", action="store_true", help="process what is waiting now, then stop"
        )
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="stop after this many seconds"
        )

    def handle(self, *args, batch, once, max_seconds, **options):
        size = settings.WEBHOOK_BATCH_SIZE if batch is None else batch
        if size < 1:
            raise usage_error("--batch must be at least 1.")
        connection.ensure_connection()  # unreachable at start: status 2, not a silent wait
        stopping = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.append(True))
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        work(size=size, once=once, should_stop=lambda: bool(stopping), deadline=deadline)


def work(*, size: int, should_stop, once: bool = False, deadline: float | None = None) -> None:
    """The worker's loop: process what waits, then sleep until woken (or idle time ends)."""
    worker = worker_name()
    listener = wake_listener()
    idle = settings.WEBHOOK_WORKER_IDLE_SECONDS
    logger.info("webhook worker %s started (batches of %s)", worker, size)
    try:
        # Listening before the first look: nothing committed after it is missed.
        listener.start()
    except Exception as exc:  # Redis or PostgreSQL away: wait() tries again and polls
        logger.warning("webhook worker: cannot listen yet (%s)", exc)
    try:
        while not should_stop() and (deadline is None or time.monotonic() < deadline):
            try:
                report = deliveries_run(limit=size, worker=worker, max_batches=10)
            except DatabaseError as exc:
                logger.warning("webhook worker: database unavailable (%s)", exc)
                connection.close()
                time.sleep(1.0)
                continue
            if once and report.processed < size * 10:
                break
            if report.processed:
                continue  # more may be waiting
            listener.wait(idle)
    finally:
        listener.close()
    logger.info("webhook worker %s stopped", worker)
