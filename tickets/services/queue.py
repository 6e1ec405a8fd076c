"""Operators working the queue: calling, recalling, starting, completing, no-shows and
cancellations."""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets.errors import TicketError
from tickets.models import (
    Ticket,
    TicketStatus,
)
from tickets.services.desks import desk_call_next
from tickets.services.transitions import _lock, _move, _tell

logger = logging.getLogger(__name__)


def ticket_call_next(*, operator, desk: str, service_id: int | None = None) -> Ticket | None:
    """Call the waiting ticket paid first (of one service, or of all) to `desk`; None when
    empty. The desk's current ticket is finished first (tickets/services/desks.py)."""
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
