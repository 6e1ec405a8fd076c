"""Operators at desks: the desk each operator works at, calling the next ticket to it, and
reprints asked for with a reason.

- An operator's desk is remembered (`DeskAssignment`, append-only: the latest row is the
  desk now), so a new login, another browser or another device starts at the same desk.
- A desk has at most one ticket called or in progress (the database constraint
  `ticket_one_per_desk`). **Calling the next finishes the desk's current ticket**: it
  becomes COMPLETED, with a `completed` event saying `finished_by: call_next`. The customer
  who was called was served (operators often call the next without pressing Start or
  Complete); one who never came is marked with "No-show" before calling the next.
- Any ticket not finished (not completed, no-show or cancelled) can be reprinted, with a
  reason that is kept on its `reprint` event with who asked for it.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import text_storable
from tickets.errors import TicketError
from tickets.models import (
    AT_DESK_STATUSES,
    FINISHED_STATUSES,
    DeskAssignment,
    PrintJob,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tickets.services.print_jobs import print_jobs_create
from tickets.services.transitions import _lock, _move, _tell

DESK_MAX_LENGTH = 20
REASON_MAX_LENGTH = 300


def operator_desk(*, operator) -> str:
    """The desk `operator` works at now, or "" when they never chose one."""
    return (
        DeskAssignment.objects.filter(operator=operator)
        .order_by("-id")
        .values_list("desk", flat=True)
        .first()
        or ""
    )


def _desk_clean(desk) -> str:
    desk = str(desk or "").strip()
    if not desk:
        raise TicketError(_("Type the number or name of your desk."), code="desk_required")
    if len(desk) > DESK_MAX_LENGTH or not text_storable(desk) or not desk.isprintable():
        raise TicketError(
            _("A desk is at most %(n)d letters or digits.") % {"n": DESK_MAX_LENGTH},
            code="invalid_desk",
        )
    return desk


def operator_desk_set(*, operator, desk: str) -> str:
    """Remember `desk` as the desk `operator` works at (an audited assignment row; nothing
    is written when it is already their desk). Returns the desk, cleaned."""
    desk = _desk_clean(desk)
    with transaction.atomic():
        previous = operator_desk(operator=operator)
        if previous != desk:
            DeskAssignment.objects.create(operator=operator, desk=desk, previous_desk=previous)
    return desk


def _finish_at_desk(ticket: Ticket, *, operator) -> None:
    """The desk calls its next customer: its current ticket (locked by the caller) was
    served."""
    ticket.finished_at = timezone.now()
    _move(ticket, TicketStatus.COMPLETED, actor=operator, finished_by="call_next")
    _tell(ticket, "ticket.completed")


def desk_call_next(*, operator, desk: str, service_id: int | None = None) -> Ticket | None:
    """Call the waiting ticket paid first (of one service, or of all) to `desk`; None when
    nobody waits. The desk's current ticket, if any, is finished first, even when nobody
    waits: the desk is then free. Another call to the same desk at the same moment is
    refused (TicketError `desk_busy`), never a second ticket at the desk."""
    if not str(desk or "").strip():
        raise TicketError(_("Set your desk number first."), code="desk_required")
    desk = _desk_clean(desk)
    try:
        with transaction.atomic():
            current = (
                Ticket.objects.select_for_update(of=("self",))
                .select_related("service", "payment_session")
                .filter(desk=desk, status__in=AT_DESK_STATUSES)
                .order_by("pk")
            )
            for ticket in current:
                _finish_at_desk(ticket, operator=operator)
            waiting = (
                Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("service", "payment_session")
                .filter(status__in=(TicketStatus.IN_QUEUE, TicketStatus.PRINT_ERROR))
                .order_by("paid_at", "id")
            )
            if service_id:
                waiting = waiting.filter(service_id=service_id)
            ticket = waiting.first()
            if ticket is None:
                return None
            ticket.desk, ticket.operator, ticket.called_at = desk, operator, timezone.now()
            _move(ticket, TicketStatus.CALLED, actor=operator, desk=desk)
            _tell(ticket, "ticket.called", display=True)
            return ticket
    except IntegrityError:
        # `ticket_one_per_desk`: another operator called a ticket to this desk meanwhile.
        raise TicketError(
            _("Desk %(desk)s has just called another ticket: look at the board, then call again.")
            % {"desk": desk},
            code="desk_busy",
        ) from None


def ticket_reprint_request(*, ticket_id: int, actor, reason: str) -> PrintJob:
    """A new print job for any ticket not finished (waiting, called or being served), asked
    for by `actor` with `reason` (kept on the `reprint` event). The ticket's status does
    not change for a ticket at a desk; one still waiting prints as a first print does."""
    reason = str(reason or "").strip()
    if not reason:
        raise TicketError(_("Say why the ticket is printed again."), code="reason_required")
    if len(reason) > REASON_MAX_LENGTH or not text_storable(reason):
        raise TicketError(
            _("The reason is at most %(n)d characters.") % {"n": REASON_MAX_LENGTH},
            code="invalid_reason",
        )
    with transaction.atomic():
        ticket = _lock(ticket_id)
        if ticket.status in FINISHED_STATUSES:
            raise TicketError(
                _("%(code)s is %(status)s: only a ticket not finished can be reprinted.")
                % {"code": ticket.code, "status": ticket.get_status_display()},
                code="finished",
            )
        TicketEvent.objects.create(
            ticket=ticket,
            type="reprint",
            from_status=ticket.status,
            to_status=ticket.status,
            actor=actor,
            data={"reason": reason},
        )
        (job,) = print_jobs_create(
            [(ticket, ticket.payment_session.params.get("kiosk"))], requested_by=actor
        )
        return job
