"""Moving a ticket from one status to the next: locking it, recording the event, telling
who waits on it. Every other ticket module builds on these."""

import logging

from django.conf import settings
from django.utils.translation import gettext as _

from core.errors import NotFound
from notifications.audiences import audience_display, audience_payment, audience_role
from notifications.services import event_publish
from tickets.errors import TicketError
from tickets.models import (
    TICKET_TRANSITIONS,
    Ticket,
    TicketEvent,
    TicketStatus,
)

logger = logging.getLogger(__name__)


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
    audiences = [audience_role("operator")]
    if customer:
        audiences.append(audience_payment(ticket.payment_session.reference))
    if display:
        audiences.append(audience_display(settings.TICKET_DISPLAY))
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
