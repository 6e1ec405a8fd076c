"""Payments that arrived short of the price (NOWPayments' `partially_paid`).

The money is held, never fulfilled as is: the session waits (processing) with a
`PartialPayment` row saying what arrived and what is missing, which the customer's pages
show. Staff then either accept it — the session is confirmed through the one confirmation
path — or record that what arrived was refunded at the provider, which cancels the
session. Both need a reason and leave audit rows.
"""

from dataclasses import replace

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.errors import PaymentError
from payments.models import (
    OPEN_STATUSES,
    PAID_STATUSES,
    AuditSource,
    PartialPayment,
    PartialStatus,
    PaymentAudit,
    PaymentSession,
)
from payments.providers import Notification, PaymentState
from payments.services.confirmation import (
    Applied,
    ConfirmOutcome,
    ConfirmResult,
    Evidence,
    _audit_facts,
    _lock,
    _publish,
    notifications_apply,
    payment_cancel,
)

PARTIAL_FACTS = ("pay_amount", "actually_paid", "pay_currency", "pay_address")


def _held(reference: str) -> PartialPayment:
    partial = (
        PartialPayment.objects.select_related("session")
        .filter(session__reference=reference)
        .first()
    )
    if partial is None:
        raise PaymentError(_("This payment has no partial payment."), code="no_partial_payment")
    if partial.status != PartialStatus.HELD:
        raise PaymentError(
            _("This partial payment was already dealt with (%(status)s).")
            % {"status": partial.get_status_display()},
            code="partial_not_held",
        )
    if not partial.is_held:
        raise PaymentError(
            _("This payment was paid in full meanwhile: there is nothing to decide."),
            code="partial_not_held",
        )
    return partial


def _staff(evidence: Evidence) -> None:
    if evidence.source != AuditSource.STAFF:
        raise PaymentError(_("Only staff can decide on a partial payment."), code="staff_only")
    evidence.check()


def partial_payment_accept(*, reference: str, evidence: Evidence) -> ConfirmResult:
    """Staff accept what arrived as payment: the session is confirmed through the one
    confirmation path (its price as the amount; what really arrived kept on the audit
    rows) and the partial payment marked accepted, in one transaction. Needs a staff
    reason; a payment no longer held raises PaymentError and changes nothing."""
    _staff(evidence)
    partial = _held(reference)
    facts = _audit_facts(partial)
    evidence = replace(evidence, data={**evidence.data, "partial_payment": facts})
    session = partial.session
    notification = Notification(
        reference=reference,
        provider_payment_id=partial.provider_payment_id,
        state=PaymentState.APPROVED,
        amount=session.amount,
        currency=session.currency,
        provider_status="partially_paid",
    )

    def settle(results) -> None:
        (result,) = results
        if isinstance(result, Exception):
            return
        if result.outcome in (ConfirmOutcome.ALREADY_PROCESSED, ConfirmOutcome.DUPLICATE_PAYMENT):
            # Paid in full between the check above and the lock: nothing of this stays.
            raise PaymentError(
                _("This payment was paid in full meanwhile: there is nothing to decide."),
                code="partial_not_held",
            )
        _settle(partial.pk, PartialStatus.ACCEPTED, evidence, result.session, facts)

    (result,) = notifications_apply(
        [Applied(notification, evidence)], what="partial_payment_accept", after=settle
    )
    if isinstance(result, Exception):
        raise result
    return result


def _settle(pk: int, status: str, evidence: Evidence, session: PaymentSession, facts) -> None:
    """Mark the partial payment decided, once (caller is in the decision's transaction)."""
    partial = PartialPayment.objects.select_for_update().get(pk=pk)
    if partial.status != PartialStatus.HELD:
        raise PaymentError(
            _("This partial payment was already dealt with (%(status)s).")
            % {"status": partial.get_status_display()},
            code="partial_not_held",
        )
    partial.status = status
    partial.resolved_at = timezone.now()
    partial.resolved_by = evidence.actor
    partial.reason = evidence.reason
    partial.save(update_fields=["status", "resolved_at", "resolved_by", "reason"])
    PaymentAudit.objects.create(
        session=session,
        action=f"partial_{status}",
        from_status=session.status,
        to_status=session.status,
        source=evidence.source,
        actor=evidence.actor,
        reason=evidence.reason,
        data=facts,
    )


def partial_payment_refund(*, reference: str, evidence: Evidence) -> PaymentSession:
    """Staff record that what arrived was refunded at the provider, as a refund of a
    provider payment is recorded: the session is cancelled if still open (audited, the
    customer told) and the partial payment marked refunded, in one transaction. Needs a
    staff reason; a payment no longer held raises PaymentError and changes nothing."""
    _staff(evidence)
    partial = _held(reference)
    facts = _audit_facts(partial)
    with transaction.atomic():
        session = _lock(reference)
        if session.status in PAID_STATUSES:
            raise PaymentError(
                _("This payment was paid in full meanwhile (%(status)s): nothing was refunded.")
                % {"status": session.get_status_display()},
                code="partial_not_held",
            )
        if session.status in OPEN_STATUSES:
            session = payment_cancel(
                reference=reference,
                evidence=replace(evidence, data={**evidence.data, "partial_payment": facts}),
            ).session
        _settle(partial.pk, PartialStatus.REFUNDED, evidence, session, facts)
        _publish(session, "payment.refunded", reason="partial_refunded")
        return session
