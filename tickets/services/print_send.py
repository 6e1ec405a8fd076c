"""One attempt at the printer (the print task's body): committed before the first byte
leaves, never under a lock."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tickets.models import (
    Printer,
    PrintJob,
    PrintJobStatus,
    TicketStatus,
)
from tickets.printing import PrintError, printer_send
from tickets.services.print_jobs import _print_attempt_failed
from tickets.services.print_recovery import _print_job_recover, print_lease_seconds
from tickets.services.transitions import _lock, _move, _tell

logger = logging.getLogger(__name__)


def print_job_run(*, job_id: int) -> str:
    """Send one print job (the task's body). Never holds a lock while printing.

    The attempt (`sending`, its number and start time) is committed before the first byte
    goes out. A job already `sending` belongs to the attempt that began it: it is left
    alone during that attempt's lease, and after it is taken back as half-sent (as
    `print_jobs_recover` would), never sent again unmarked. Runs in no caller's
    transaction (durable): the attempt must be committed before the printer sees a byte.
    """
    with transaction.atomic(durable=True):
        job = (
            PrintJob.objects.select_for_update(of=("self",))
            .select_related("printer")
            .get(pk=job_id)
        )
        if job.status in (PrintJobStatus.PRINTED, PrintJobStatus.FAILED):
            return job.status
        in_flight = job.status == PrintJobStatus.SENDING
        if not in_flight:
            attempt, url, data = _print_attempt_begin(job)
    if in_flight:
        lease = print_lease_seconds()
        cutoff = timezone.now() - timedelta(seconds=lease)
        return _print_job_recover(job_id, cutoff=cutoff, lease=lease) or PrintJobStatus.SENDING
    try:
        printer_send(url, data)
    except PrintError as exc:
        return _print_failed(job_id, str(exc), attempt=attempt, maybe_printed=exc.maybe_printed)
    with transaction.atomic():
        job = PrintJob.objects.select_for_update().get(pk=job_id)
        job.status = PrintJobStatus.PRINTED
        job.sent_at = timezone.now()
        job.last_error = ""
        job.save(update_fields=["status", "sent_at", "last_error"])
        if job.printer_id:
            Printer.objects.filter(pk=job.printer_id).update(last_success_at=job.sent_at)
        ticket = _lock(job.ticket_id)
        # PRINT_ERROR: the attempt outlived its lease, the sweep gave up on it, and the
        # paper came out anyway; the ticket is in the queue after all.
        if ticket.status in (TicketStatus.PRINTING, TicketStatus.PRINT_ERROR):
            ticket.printed_at = job.sent_at
            _move(ticket, TicketStatus.IN_QUEUE, job=job.pk)
            _tell(ticket, "ticket.printed")
    return PrintJobStatus.PRINTED


def _print_attempt_begin(job: PrintJob) -> tuple[int, str, bytes]:
    """Record a new attempt of `job` (caller holds its lock; the caller's transaction
    commits it before the first byte goes out): its number, the printer URL and bytes."""
    ticket = _lock(job.ticket_id)
    if ticket.status in (TicketStatus.PAID, TicketStatus.PRINT_ERROR):
        _move(ticket, TicketStatus.PRINTING, job=job.pk)
    job.status = PrintJobStatus.SENDING
    job.attempts += 1
    # While sending, `sent_at` is when this attempt began: its lease (print_jobs_recover
    # takes the job back from a worker that died in the middle).
    job.sent_at = timezone.now()
    job.save(update_fields=["status", "attempts", "sent_at"])
    url = job.printer.url if job.printer else settings.PRINTER_URL
    return job.attempts, url, bytes(job.data)


def _print_failed(job_id: int, error: str, *, attempt: int, maybe_printed: bool = False) -> str:
    """Record that `attempt` of the job failed: retried with back-off (marked REPRINT when
    it `maybe_printed`), or failed for good (ticket to PRINT_ERROR, staff alerted) after
    the last attempt."""
    with transaction.atomic():
        job = PrintJob.objects.select_for_update().get(pk=job_id)
        if job.status != PrintJobStatus.SENDING or job.attempts != attempt:
            # The attempt outlived its lease and print_jobs_recover already took the job
            # back; what happens to it now is decided by whoever holds it.
            logger.warning("print job %s: late failure of attempt %s: %s", job_id, attempt, error)
            return job.status
        return _print_attempt_failed(job, error, maybe_printed=maybe_printed)
