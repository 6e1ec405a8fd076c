"""Print jobs: made for tickets and queued for the print task on commit; a failed attempt
retried with back-off (marked REPRINT when it may have printed) or failed for good."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.taskqueue import TaskRef, tasks_enqueue
from notifications.audiences import audience_role
from notifications.services import alert_raise, event_publish
from tickets.models import (
    Kiosk,
    Printer,
    PrintJob,
    PrintJobStatus,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tickets.printing import reprint_banner_render, ticket_render
from tickets.services.transitions import _lock, _move, _tell, ticket_payload

logger = logging.getLogger(__name__)

# tickets/tasks.py runs print_send, which queues this task again on failure.
PRINT_JOB_SEND = TaskRef("tickets.tasks.print_job_send")


def print_jobs_create(
    tickets: list[tuple[Ticket, int | None]], *, requested_by=None
) -> list[PrintJob]:
    """Render each ticket for the printer of its kiosk (the first enabled printer when the
    kiosk has none) and queue its job: one INSERT, and the tasks enqueued together when
    the transaction commits."""
    kiosk_ids = {kiosk_id for _, kiosk_id in tickets if kiosk_id}
    kiosks = Kiosk.objects.select_related("printer").in_bulk(kiosk_ids) if kiosk_ids else {}
    fallback: list[Printer | None] = []
    jobs = []
    for ticket, kiosk_id in tickets:
        kiosk = kiosks.get(kiosk_id)
        if kiosk and kiosk.printer and kiosk.printer.enabled:
            printer = kiosk.printer
        else:
            if not fallback:
                fallback.append(Printer.objects.filter(enabled=True).order_by("id").first())
            printer = fallback[0]
        jobs.append(_print_job_new(ticket, printer, requested_by=requested_by))
    return _print_jobs_queue(jobs)


def _print_job_new(ticket: Ticket, printer: Printer | None, *, requested_by=None) -> PrintJob:
    profile = printer.profile if printer else "default"
    return PrintJob(
        ticket=ticket,
        printer=printer,
        requested_by=requested_by,
        data=ticket_render(ticket, profile=profile),
    )


def _print_jobs_queue(jobs: list[PrintJob]) -> list[PrintJob]:
    PrintJob.objects.bulk_create(jobs)
    calls = [{"job_id": job.pk} for job in jobs]
    # Robust: the jobs are committed; a task lost here is found by print_jobs_recover.
    transaction.on_commit(lambda: tasks_enqueue(PRINT_JOB_SEND.task, calls), robust=True)
    return jobs


def _print_attempt_failed(job: PrintJob, error: str, *, maybe_printed: bool = False) -> str:
    """Caller holds the lock of `job`, whose current attempt failed with `error`.

    `maybe_printed`: the attempt's bytes may have reached the printer; a retry is then
    marked REPRINT (`_print_job_mark_reprint`). The last attempt fails as any other.
    """
    job_id = job.pk
    job.last_error = error[:1000]
    if job.printer_id:
        Printer.objects.filter(pk=job.printer_id).update(
            last_error=error[:1000], last_error_at=timezone.now()
        )
    if job.attempts < settings.PRINT_MAX_ATTEMPTS:
        fields = ["status", "last_error"]
        if maybe_printed:
            _print_job_mark_reprint(job, error)
            fields += ["reprint_marked", "data"]
        job.status = PrintJobStatus.QUEUED
        job.save(update_fields=fields)
        delay = settings.PRINT_RETRY_BASE_SECONDS * 2 ** (job.attempts - 1)
        when = timezone.now() + timedelta(seconds=delay)
        transaction.on_commit(
            lambda: PRINT_JOB_SEND.task.using(run_after=when).enqueue(job_id=job_id)
        )
        logger.warning("print job %s failed (attempt %s): %s", job_id, job.attempts, error)
        return PrintJobStatus.QUEUED
    job.status = PrintJobStatus.FAILED
    job.save(update_fields=["status", "last_error"])
    ticket = _lock(job.ticket_id)
    if ticket.status == TicketStatus.PRINTING:
        _move(ticket, TicketStatus.PRINT_ERROR, job=job.pk, error=error[:300])
        _tell(ticket, "ticket.print_error")
    alert_raise(
        code="ticket.print_error",
        message=_("A ticket could not be printed: %(code)s") % {"code": ticket.code},
        context={"ticket": ticket.pk, "job": job.pk, "error": error[:300]},
    )
    event_publish(
        audience=audience_role("operator"),
        type="alert.raised",
        payload={"code": "ticket.print_error", "ticket": ticket.code, "error": error[:300]},
    )
    return PrintJobStatus.FAILED


def _print_job_mark_reprint(job: PrintJob, error: str) -> None:
    """Record that the current attempt of `job` may have printed, and make every later
    attempt print the REPRINT banner above the ticket. Caller holds the lock of `job` and
    saves it.

    Every such attempt gets a `print_interrupted` TicketEvent; the first one also marks
    the job and tells the operators (`ticket.print_interrupted`, to `role:operator`).
    """
    ticket = _lock(job.ticket_id)
    first = not job.reprint_marked
    if first:
        language = ticket.payment_session.params.get("language")
        profile = job.printer.profile if job.printer else "default"
        job.data = reprint_banner_render(language=language, profile=profile) + bytes(job.data)
        job.reprint_marked = True
    TicketEvent.objects.create(
        ticket=ticket,
        type="print_interrupted",
        from_status=ticket.status,
        to_status=ticket.status,
        data={
            "job": job.pk,
            "attempt": job.attempts,
            "attempt_started_at": job.sent_at.isoformat() if job.sent_at else None,
            "error": error[:300],
            "resend": "marked_reprint",
        },
    )
    if first:
        event_publish(
            audience=audience_role("operator"),
            type="ticket.print_interrupted",
            payload={**ticket_payload(ticket), "job": job.pk, "attempt": job.attempts},
        )
    logger.warning(
        "print job %s: attempt %s may have printed (%s); re-sent marked REPRINT",
        job.pk,
        job.attempts,
        error,
        extra={"reference": ticket.payment_session.reference},
    )
