"""Taking back the print jobs a dead worker left behind (`recover_print_jobs`, and a
task run again for a job still `sending`)."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from tickets.models import (
    PrintJob,
    PrintJobStatus,
    TicketEvent,
)
from tickets.services.print_jobs import PRINT_JOB_SEND, _print_attempt_failed
from tickets.services.transitions import _lock

logger = logging.getLogger(__name__)


# One attempt connects, writes and reads the printer's status, each step bounded by
# PRINT_TIMEOUT_SECONDS; past that plus this margin (database work, a loaded machine) the
# worker that made it is presumed dead.
PRINT_LEASE_MARGIN_SECONDS = 10.0


def print_lease_seconds() -> float:
    """How long after it began an attempt counts as abandoned."""
    return 3 * settings.PRINT_TIMEOUT_SECONDS + PRINT_LEASE_MARGIN_SECONDS


@dataclass
class PrintRecovery:
    """What `print_jobs_recover` did: job ids re-queued, and those failed for good."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _print_task_pending(job_id: int, cutoff) -> bool:
    """Whether a task that sends the job waits in the queue, or was taken by a worker
    after `cutoff`. Only the database task backend can tell; with another, assume so."""

    if not isinstance(PRINT_JOB_SEND.task.get_backend(), DatabaseBackend):
        return True
    return (
        DBTaskResult.objects.filter(
            task_path=PRINT_JOB_SEND.task.module_path, args_kwargs__kwargs__job_id=job_id
        )
        .filter(
            Q(status=TaskResultStatus.READY)
            | Q(status=TaskResultStatus.RUNNING, started_at__gte=cutoff)
        )
        .exists()
    )


def _print_job_recover(job_id: int, *, cutoff, lease: float) -> str | None:
    """Take one job back if it is still abandoned; its new status, or None if not."""
    with transaction.atomic():
        job = PrintJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or (job.sent_at or job.created_at) >= cutoff:
            return None  # a worker holds it right now, or touched it since
        if job.status == PrintJobStatus.QUEUED and not _print_task_pending(job.pk, cutoff):
            was = PrintJobStatus.QUEUED  # its task was lost before any attempt began
        elif job.status == PrintJobStatus.SENDING:
            was = PrintJobStatus.SENDING
        else:
            return None
        ticket = _lock(job.ticket_id)
        event = TicketEvent.objects.create(
            ticket=ticket,
            type="print_recovered",
            from_status=ticket.status,
            to_status=ticket.status,
            data={
                "job": job.pk,
                "was": was,
                "attempt": job.attempts,
                "attempt_started_at": (job.sent_at or job.created_at).isoformat(),
            },
        )
        if was == PrintJobStatus.SENDING:
            # Half-sent: the bytes may be on paper already.
            error = f"no result {lease:.0f} s after sending began: the worker stopped"
            outcome = _print_attempt_failed(job, error, maybe_printed=True)
        else:
            transaction.on_commit(lambda: PRINT_JOB_SEND.task.enqueue(job_id=job_id))
            outcome = PrintJobStatus.QUEUED
        event.data["outcome"] = outcome
        event.save(update_fields=["data"])
    logger.warning("print job %s taken back from a dead worker (was %s): %s", job_id, was, outcome)
    return outcome


def print_jobs_recover(*, older_than: float | None = None) -> PrintRecovery:
    """Take back the print jobs a dead worker left behind (periodic `recover_print_jobs`).

    A job still `sending` whose attempt began more than `older_than` seconds ago (default
    `print_lease_seconds()`) counts as a failed attempt that may have printed: it is
    re-queued with back-off and marked REPRINT (operators told), or after the last
    attempt fails for good (ticket to PRINT_ERROR, staff alerted). A `queued` job
    untouched that long with no task waiting for it is queued again, unmarked: it never
    began sending. Each is done once, under the job's lock, with a `print_recovered`
    TicketEvent.
    """
    lease = print_lease_seconds() if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=lease)
    untouched = Q(sent_at__lt=cutoff) | Q(sent_at__isnull=True, created_at__lt=cutoff)
    waiting = (PrintJobStatus.SENDING, PrintJobStatus.QUEUED)
    candidates = (
        PrintJob.objects.filter(untouched, status__in=waiting)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    report = PrintRecovery()
    for job_id in list(candidates):
        outcome = _print_job_recover(job_id, cutoff=cutoff, lease=lease)
        if outcome == PrintJobStatus.QUEUED:
            report.requeued.append(job_id)
        elif outcome == PrintJobStatus.FAILED:
            report.failed.append(job_id)
    return report
