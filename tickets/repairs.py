"""Staff fixes for the kiosk integration's issues list: make the ticket a paid session
never got, through the payments core (locked, exactly once, audited with the staff user
and their reason)."""

from django.utils.translation import gettext as _

from core.errors import NotFound
from core.text import text_storable
from payments.models import AuditSource, PaymentSession, PaymentStatus
from payments.services import payment_fulfil
from payments.services.confirmation import Evidence
from tickets.errors import TicketError
from tickets.models import Ticket


def ticket_missing_create(
    *, reference: str, actor, reason: str, accept_review: bool = False
) -> Ticket:
    """The ticket of the paid kiosk session `reference`, made now if it was missing.

    A session held for review (amount mismatch, late payment, refund due) needs
    `accept_review`. Staff only (the caller checks); `reason` is required and kept on the
    payment's audit row. Owns its transaction (as `payment_fulfil` does)."""
    session = None
    if text_storable(reference or ""):
        session = PaymentSession.objects.filter(reference=reference, purpose="ticket").first()
    if session is None:
        raise NotFound(_("No kiosk payment with this reference."))
    if session.status != PaymentStatus.COMPLETED:
        raise TicketError(
            _("%(ref)s is not paid (%(status)s): there is no ticket to make.")
            % {"ref": session.reference, "status": session.get_status_display()},
            code="not_paid",
        )
    payment_fulfil(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=actor, reason=str(reason or "")),
        accept_review=accept_review,
    )
    ticket = Ticket.objects.filter(payment_session=session).select_related("service").first()
    if ticket is None:
        session.refresh_from_db(fields=["fulfilment_error"])
        raise TicketError(
            _("The ticket could not be made: %(error)s")
            % {"error": session.fulfilment_error or _("unknown error")},
            code="fulfilment_failed",
        )
    return ticket
