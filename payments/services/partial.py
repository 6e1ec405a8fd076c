"""Payments that arrived short of the price (NOWPayments' `partially_paid`).

The money is held, never fulfilled as is: the session waits (processing) with a
`PartialPayment` row saying what arrived and what is missing, which the customer's pages
show. Staff then either accept it — the session is confirmed through the one confirmation
path — or record that what arrived was refunded at the provider, which cancels the
session. Both need a reason and leave audit rows.
"""

from dataclasses import replace
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import text_storable
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
    _audit,
    _lock,
    _publish,
    notifications_apply,
    payment_cancel,
    payment_mark_processing,
)

PARTIAL_FACTS = ("pay_amount", "actually_paid", "pay_currency", "pay_address")


COIN_PLACES = Decimal("1e-18")
COIN_MAX = Decimal("1e21")  # what PartialPayment's amounts hold (40 digits, 18 places)


def _coin_amount(value) -> Decimal | None:
    """A crypto amount as the provider wrote it, to 18 places; None when it is not one
    (or too large to be one)."""
    if value in (None, "") or isinstance(value, bool | dict | list):
        return None
    try:
        amount = Decimal(str(value))
        if not amount.is_finite() or not 0 <= amount < COIN_MAX:
            return None
        return amount.quantize(COIN_PLACES, rounding=ROUND_DOWN)
    except InvalidOperation:
        return None


def _text(value, max_length: int) -> str:
    text = value if isinstance(value, str) else ""
    return text[:max_length] if text_storable(text) else ""


def _facts(notification: Notification) -> dict:
    raw = notification.raw or {}
    return {
        "provider_payment_id": notification.provider_payment_id[:100],
        "pay_amount": _coin_amount(raw.get("pay_amount")),
        "actually_paid": _coin_amount(raw.get("actually_paid")),
        "pay_currency": _text(raw.get("pay_currency"), 20),
        "pay_address": _text(raw.get("pay_address"), 200),
    }


def partial_payment_hold(*, notification: Notification, evidence: Evidence) -> ConfirmResult:
    """Record that part of a session's price arrived: the session goes (or stays)
    processing (a closed one keeps its status) and its PartialPayment row says what
    arrived; the customer is told. A repeat with the same figures changes nothing
    (ALREADY_PROCESSED); a session paid in full, or a partial payment staff decided, is
    left alone (IGNORED, audited).

    Runs inside the confirmation path's transaction (`notifications_apply`), which holds
    the session lock."""
    reference = notification.reference or ""
    marked = payment_mark_processing(
        reference=reference,
        evidence=evidence,
        provider_payment_id=notification.provider_payment_id,
    )
    session = marked.session
    if session.status in PAID_STATUSES:
        _audit(session, "ignored_partially_paid", evidence, before=session.status)
        return ConfirmResult(ConfirmOutcome.IGNORED, session)
    # An expired, failed or cancelled session keeps its status; what arrived is still held.
    facts = _facts(notification)
    partial = PartialPayment.objects.select_for_update().filter(session=session).first()
    if partial is not None and partial.status != PartialStatus.HELD:
        _audit(session, "ignored_partially_paid", evidence, before=session.status)
        return ConfirmResult(ConfirmOutcome.IGNORED, session)
    if partial is not None and all(getattr(partial, k) == v for k, v in facts.items()):
        return ConfirmResult(ConfirmOutcome.ALREADY_PROCESSED, session)
    now = timezone.now()
    if partial is None:
        partial = PartialPayment(session=session, received_at=now)
    for name, value in facts.items():
        setattr(partial, name, value)
    partial.updated_at = now
    partial.save()
    _audit(session, "partially_paid", evidence, before=session.status, data=_audit_facts(partial))
    _publish(
        session,
        "payment.partially_paid",
        paid=partial.paid_text,
        due=partial.due_text,
        missing=partial.missing_text,
        coin=partial.coin,
    )
    return ConfirmResult(ConfirmOutcome.CHANGED, session)


def _audit_facts(partial: PartialPayment) -> dict:
    return {
        "pay_amount": partial.due_text,
        "actually_paid": partial.paid_text,
        "missing": partial.missing_text,
        "pay_currency": partial.pay_currency,
        "provider_payment_id": partial.provider_payment_id,
    }


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
