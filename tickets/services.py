"""Tickets: made from paid kiosk sessions, printed by a task, called by operators.

The `ticket` purpose turns a paid session into a PAID ticket inside the confirmation's
transaction (one ticket per session: a database constraint). Its number comes from the
service's counter for the local day, locked for the increment, so concurrent payments
get 1, 2, 3… without gaps or duplicates. Printing happens in a task, on commit.

Printing is at least once, and a duplicate is never silent. The ticket is the customer's
proof of payment, so it is never dropped; but ESC/POS over raw TCP has no job id a printer
remembers, so a job whose bytes may have reached the printer without the result being
recorded (a worker killed while sending, a printer that took the bytes and never
answered) may already be on paper. Such a job is "half-sent", and:

- before the first byte goes out, the attempt is committed on the job row (`sending`,
  attempt number, the time it began), so a half-sent job can always be recognised;
- the next attempt is sent with a REPRINT banner above the ticket (`reprint_marked`; in
  the language the customer used at the kiosk), so the customer and the operator can tell
  the second slip from a second ticket; a job's unmarked copy comes out at most once
  (a reprint staff or an operator ask for is a new job, printed as it is);
- the ticket's audit trail gets a `print_interrupted` event (which attempt, when it
  began, why it is in doubt) and the operators a `ticket.print_interrupted` event; their
  panel marks the ticket "REPRINT" for as long as it waits or is at a desk;
- after the last attempt nothing changes: the ticket goes to PRINT_ERROR and staff are
  alerted, whether or not the attempt may have printed.

A job found `sending` by `print_jobs_recover` (the periodic sweep) or by a task run again
for it, once the attempt has outlived its lease, is such a half-sent job.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConfirmaError, NotFound
from config.taskqueue import tasks_enqueue
from notifications.services import alert_raise, event_publish
from payments.errors import InvalidParams
from payments.models import PaymentSession, Provider
from payments.registry import Purpose, Quote
from tickets.cpf import cpf_mask, cpf_valid
from tickets.models import (
    TICKET_TRANSITIONS,
    Kiosk,
    Printer,
    PrintJob,
    PrintJobStatus,
    Service,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketStatus,
)
from tickets.printing import PrintError, printer_send, reprint_banner_render, ticket_render

logger = logging.getLogger(__name__)


class TicketError(ConfirmaError):
    code = "ticket_error"


def kiosk_token_rotate(*, kiosk: Kiosk) -> str:
    token = "kst_" + secrets.token_urlsafe(24)
    Kiosk.objects.filter(pk=kiosk.pk).update(token_hash=hashlib.sha256(token.encode()).hexdigest())
    return token


def kiosk_for_token(token: str) -> Kiosk | None:
    if not token or not token.startswith("kst_"):
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Kiosk.objects.filter(token_hash=digest, active=True).select_related("printer").first()


# --- Transitions and events -------------------------------------------------------------------


def ticket_payload(ticket: Ticket) -> dict:
    return {
        "ticket": ticket.pk,
        "code": ticket.code,
        "service": ticket.service.name,
        "service_id": ticket.service_id,
        "status": ticket.status,
        "desk": ticket.desk,
        "reference": ticket.payment_session.reference,
    }


def _move(ticket: Ticket, to: str, *, actor=None, **data) -> None:
    """Change status (caller holds the ticket lock); refuses transitions not allowed."""
    if to not in TICKET_TRANSITIONS[ticket.status]:
        raise TicketError(
            _("A ticket that is %(status)s cannot become %(to)s.")
            % {"status": ticket.get_status_display(), "to": TicketStatus(to).label},
            code="invalid_transition",
        )
    before = ticket.status
    ticket.status = to
    ticket.save()
    TicketEvent.objects.create(
        ticket=ticket, type=to, from_status=before, to_status=to, actor=actor, data=data
    )
    logger.info(
        "ticket %s %s -> %s",
        ticket.code,
        before,
        to,
        extra={"reference": ticket.payment_session.reference},
    )


def _tell(ticket: Ticket, type_: str, *, customer: bool = True, display: bool = False) -> None:
    audiences = ["role:operator"]
    if customer:
        audiences.append(f"payment:{ticket.payment_session.reference}")
    if display:
        audiences.append(f"display:{settings.TICKET_DISPLAY}")
    event_publish(audience=audiences, type=type_, payload=ticket_payload(ticket))


def _lock(ticket_id: int) -> Ticket:
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("service", "payment_session")
            .get(pk=ticket_id)
        )
    except Ticket.DoesNotExist:
        raise NotFound(_("No such ticket.")) from None


def _numbers_take(service_id: int, day, count: int) -> range:
    """The next `count` ticket numbers of a service on `day`, in one statement.

    The counter row stays locked until the caller's transaction ends, so numbers are
    gapless and never given twice: a concurrent payment waits here for this one to commit
    (or roll back, giving the numbers back).
    """
    table = connection.ops.quote_name(TicketCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (service_id, day, last_number) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (service_id, day) DO UPDATE "
            f"SET last_number = {table}.last_number + EXCLUDED.last_number "
            "RETURNING last_number",
            [service_id, connection.ops.adapt_datefield_value(day), count],
        )
        last = cursor.fetchone()[0]
    return range(last - count + 1, last + 1)


# --- The purpose ---------------------------------------------------------------------------------


class TicketPurpose(Purpose):
    name = "ticket"
    allow_anonymous = True
    public = False  # started by a kiosk page holding its token, or the self-test
    providers = (Provider.MERCADOPAGO, Provider.KIOSK)

    def quote(self, *, params, user, amount, currency) -> Quote:
        allowed = {"service", "customer_name", "cpf", "kiosk", "language"}
        if set(params) - allowed:
            raise InvalidParams(_("Unknown ticket parameters."))
        service = (
            Service.objects.filter(pk=params.get("service"), active=True).first()
            if (isinstance(params.get("service"), int))
            else None
        )
        if service is None:
            raise InvalidParams(_("Choose one of the services."), code="unknown_service")
        name = str(params.get("customer_name") or "").strip()[:60]
        cpf = str(params.get("cpf") or "").strip()
        if cpf and not cpf_valid(cpf):
            raise InvalidParams(_("This CPF is not valid."), code="invalid_cpf")
        clean = {"service": service.pk, "customer_name": name, "cpf": cpf_mask(cpf)}
        if params.get("kiosk") is not None:
            kiosk = params["kiosk"]
            if (
                not isinstance(kiosk, int)
                or not Kiosk.objects.filter(pk=kiosk, active=True).exists()
            ):
                raise InvalidParams(_("Unknown kiosk."), code="unknown_kiosk")
            clean["kiosk"] = kiosk
        if params.get("language") is not None:
            # The language the customer used at the kiosk: what the paper is printed in.
            if params["language"] not in dict(settings.LANGUAGES):
                raise InvalidParams(_("Unknown language."), code="unknown_language")
            clean["language"] = params["language"]
        return Quote(
            service.price,
            service.currency,
            clean,
            _("Ticket: %(service)s") % {"service": service.name},
        )

    def batch_order(self, *, session) -> tuple:
        # The service's ticket counter is locked until the batch commits.
        service = session.params.get("service")
        return (service if isinstance(service, int) else 0,)

    def fulfil(self, *, session: PaymentSession) -> None:
        self.fulfil_many(sessions=[session])

    def fulfil_many(self, *, sessions: list[PaymentSession]) -> None:
        """A ticket (with its first event and print job) for each session that has none;
        numbered per service and day in the order given (the batch's lock order)."""
        done = set(
            Ticket.objects.filter(payment_session__in=sessions).values_list(
                "payment_session_id", flat=True
            )
        )
        sessions = [session for session in sessions if session.pk not in done]
        if not sessions:
            return
        services = Service.objects.in_bulk({session.params["service"] for session in sessions})
        now = timezone.now()
        tickets = []
        for session in sessions:
            service = services.get(session.params["service"])
            if service is None:
                raise Service.DoesNotExist(f"No service {session.params['service']}.")
            paid_at = session.completed_at or now
            tickets.append(
                Ticket(
                    service=service,
                    day=timezone.localdate(paid_at),
                    paid_at=paid_at,
                    customer_name=session.params.get("customer_name", ""),
                    cpf_masked=session.params.get("cpf", ""),
                    payment_session=session,
                )
            )
        days: dict[tuple, list[Ticket]] = {}
        for ticket in tickets:
            days.setdefault((ticket.service_id, ticket.day), []).append(ticket)
        for (service_id, day), group in sorted(days.items()):  # counters in one order
            numbers = _numbers_take(service_id, day, len(group))
            for ticket, number in zip(group, numbers, strict=True):
                ticket.number = number
        Ticket.objects.bulk_create(tickets)
        TicketEvent.objects.bulk_create(
            [TicketEvent(ticket=t, type="created", to_status=t.status) for t in tickets]
        )
        for ticket in tickets:
            _tell(ticket, "ticket.created")
        kiosks = [session.params.get("kiosk") for session in sessions]
        print_jobs_create(list(zip(tickets, kiosks, strict=True)))

    def fulfilled_q(self):
        return Exists(Ticket.objects.filter(payment_session=OuterRef("pk")))


# --- Printing -----------------------------------------------------------------------------------


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
    from tickets.tasks import print_job_send  # tasks import this module

    PrintJob.objects.bulk_create(jobs)
    calls = [{"job_id": job.pk} for job in jobs]
    # Robust: the jobs are committed; a task lost here is found by print_jobs_recover.
    transaction.on_commit(lambda: tasks_enqueue(print_job_send, calls), robust=True)
    return jobs


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
        from tickets.tasks import print_job_send

        transaction.on_commit(lambda: print_job_send.using(run_after=when).enqueue(job_id=job_id))
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
        audience="role:operator",
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
            audience="role:operator",
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
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from tickets.tasks import print_job_send

    if not isinstance(print_job_send.get_backend(), DatabaseBackend):
        return True
    return (
        DBTaskResult.objects.filter(
            task_path=print_job_send.module_path, args_kwargs__kwargs__job_id=job_id
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
            from tickets.tasks import print_job_send

            transaction.on_commit(lambda: print_job_send.enqueue(job_id=job_id))
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


# --- The queue ------------------------------------------------------------------------------------


def ticket_call_next(*, operator, desk: str, service_id: int | None = None) -> Ticket | None:
    """Call the waiting ticket paid first (of one service, or of all) to `desk`; None when
    empty. The desk's current ticket is finished first (tickets/desks.py)."""
    from tickets.desks import desk_call_next

    return desk_call_next(operator=operator, desk=desk, service_id=service_id)


def _step(ticket_id: int, to: str, operator, event: str, **fields) -> Ticket:
    with transaction.atomic():
        ticket = _lock(ticket_id)
        for name, value in fields.items():
            setattr(ticket, name, value)
        _move(ticket, to, actor=operator)
        _tell(ticket, event, display=to == TicketStatus.CALLED)
        return ticket


def ticket_recall(*, ticket_id: int, operator) -> Ticket:
    """Call again a ticket already called (never one still waiting: that would jump the
    queue)."""
    if not Ticket.objects.filter(pk=ticket_id, status=TicketStatus.CALLED).exists():
        raise TicketError(_("Only a called ticket can be called again."), code="not_called")
    return _step(
        ticket_id, TicketStatus.CALLED, operator, "ticket.called", called_at=timezone.now()
    )


def ticket_start(*, ticket_id: int, operator) -> Ticket:
    return _step(
        ticket_id, TicketStatus.IN_PROGRESS, operator, "ticket.started", started_at=timezone.now()
    )


def ticket_complete(*, ticket_id: int, operator) -> Ticket:
    return _step(
        ticket_id, TicketStatus.COMPLETED, operator, "ticket.completed", finished_at=timezone.now()
    )


def ticket_no_show(*, ticket_id: int, operator) -> Ticket:
    return _step(
        ticket_id, TicketStatus.NO_SHOW, operator, "ticket.no_show", finished_at=timezone.now()
    )


def ticket_cancel(*, ticket_id: int, actor=None) -> Ticket:
    return _step(
        ticket_id, TicketStatus.CANCELLED, actor, "ticket.cancelled", finished_at=timezone.now()
    )
