"""Money that did not start in Confirma: never silently dropped.

Some providers (Mercado Pago: a static QR code, a payment link, the seller's app) tell
Confirma about payments that carry no reference of ours, or one we do not know. For the
adapters that say so (`keeps_unmatched`), the webhook workers:

1. before applying a batch, match such a notification by its provider payment id: the
   session that holds it, or the one staff attached it to (`notifications_resolve`);
2. when nothing matches, keep an approved payment as `UnmatchedPayment` ("unmatched
   money"), alerted, in the same transaction as the delivery's outcome; later notices of
   it (a refund) update its status (`unmatched_record`).

Staff attach unmatched money to a session with a reason (`unmatched_attach`): the session
is confirmed through the one confirmation path, in the same transaction as the link.
"""

import logging
from dataclasses import replace

from django.db import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import alert_raise
from payments.errors import PaymentError
from payments.models import (
    AuditSource,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    UnmatchedPayment,
)
from payments.providers import Notification, PaymentState, provider_get
from payments.services.confirmation import (
    Applied,
    ConfirmOutcome,
    ConfirmResult,
    Evidence,
    notifications_apply,
)

logger = logging.getLogger(__name__)


def _candidates(items) -> list:
    return [
        item
        for item in items
        if getattr(item.adapter, "keeps_unmatched", False) and item.notification.provider_payment_id
    ]


def notifications_resolve(items) -> None:
    """Give each item (a worker's `_Item`: `.adapter`, `.delivery`, `.notification`) whose
    notification has no known reference the reference of the session its provider payment
    id belongs to, when one does. Only for adapters that keep unmatched money; no query
    when the batch has none of theirs."""
    candidates = _candidates(items)
    if not candidates:
        return
    named = {item.notification.reference for item in candidates if item.notification.reference}
    known = set(
        PaymentSession.objects.filter(reference__in=named).values_list("reference", flat=True)
    )
    lost = [item for item in candidates if item.notification.reference not in known]
    by_provider: dict[str, set[str]] = {}
    for item in lost:
        by_provider.setdefault(item.delivery.provider, set()).add(
            item.notification.provider_payment_id
        )
    found: dict[tuple[str, str], str] = {}
    for provider, ids in by_provider.items():
        holders = PaymentSession.objects.filter(provider=provider, provider_payment_id__in=ids)
        for payment_id, reference in holders.values_list("provider_payment_id", "reference"):
            found[(provider, payment_id)] = reference
        attached = UnmatchedPayment.objects.filter(
            provider=provider, provider_payment_id__in=ids, session__isnull=False
        )
        for payment_id, reference in attached.values_list(
            "provider_payment_id", "session__reference"
        ):
            found.setdefault((provider, payment_id), reference)
    for item in lost:
        notification = item.notification
        reference = found.get((item.delivery.provider, notification.provider_payment_id))
        if reference is None:
            continue
        logger.info(
            "webhook delivery %s: matched by provider payment id to %s",
            item.delivery.pk,
            reference,
        )
        item.notification = replace(
            notification,
            reference=reference,
            raw={**notification.raw, "matched_by": "provider_payment_id"},
        )


def unmatched_record(*, delivery, notification: Notification) -> str:
    """Keep the money of a notification that matched no session (caller: the webhook
    worker, in the transaction that records the delivery's outcome). An approved payment
    becomes (or updates) its UnmatchedPayment row and staff are alerted; a later notice
    of a kept payment updates its status. Returns what the delivery's error should say
    ("" when there is nothing to keep: not money, or not an adapter that keeps it)."""
    adapter = provider_get(delivery.provider)
    payment_id = notification.provider_payment_id
    if not getattr(adapter, "keeps_unmatched", False) or not payment_id:
        return ""
    raw = notification.raw or {}
    now = timezone.now()
    existing = UnmatchedPayment.objects.filter(
        provider=delivery.provider, provider_payment_id=payment_id
    )
    if notification.state != PaymentState.APPROVED:
        changed = existing.update(
            provider_status=notification.provider_status[:40],
            state=notification.state.value,
            updated_at=now,
        )
        if not changed:
            return ""
        return f"unmatched money: now {notification.provider_status}"[:300]
    row, created = UnmatchedPayment.objects.get_or_create(
        provider=delivery.provider,
        provider_payment_id=payment_id,
        defaults={
            "delivery": delivery,
            "received_at": now,
            "updated_at": now,
            "provider_status": notification.provider_status[:40],
            "state": notification.state.value,
            "amount": notification.amount,
            "currency": notification.currency or "",
            "external_reference": str(raw.get("external_reference") or "")[:64],
            "description": str(raw.get("description") or "")[:200],
            "payer": raw.get("payer") or {},
        },
    )
    if not created:
        existing.update(
            provider_status=notification.provider_status[:40],
            state=notification.state.value,
            amount=notification.amount,
            currency=notification.currency or "",
            updated_at=now,
        )
        return f"unmatched money #{row.pk}"
    alert_raise(
        code="payment.unmatched",
        message=_(
            "Money arrived that matches no payment session: attach it to a session or refund it."
        ),
        context={
            "unmatched": row.pk,
            "provider": row.provider,
            "provider_payment_id": payment_id,
            "amount": f"{row.amount} {row.currency}",
        },
        dedupe_key=f"unmatched:{row.pk}",
    )
    return f"unmatched money #{row.pk}"


def unmatched_attach(*, unmatched_id: int, reference: str, evidence: Evidence) -> ConfirmResult:
    """Attach unmatched money to the session it paid for: the session is confirmed
    through the one confirmation path (its amount checked as any payment's is) and the
    money linked to it, in one transaction, both audited with the staff user and reason.
    The session's own provider payment id is replaced by this payment's while the session
    is open. Raises PaymentError, changing nothing, when the money was already attached or is not
    money any more (refunded), the session is unknown, paid through another provider, or
    already paid."""
    if evidence.source != AuditSource.STAFF:
        raise PaymentError(_("Only staff can attach unmatched money."), code="staff_only")
    evidence.check()
    row = UnmatchedPayment.objects.filter(pk=unmatched_id).first()
    if row is None:
        raise PaymentError(_("No such unmatched payment."), code="unmatched_not_found")
    _refuse_if_not_attachable(row)
    reference = (reference or "").strip()
    session = PaymentSession.objects.filter(reference=reference).first()
    if session is None:
        raise PaymentError(
            _("No payment session with the reference %(ref)s.") % {"ref": reference[:64]},
            code="payment_not_found",
        )
    if session.provider != row.provider:
        raise PaymentError(
            _("Session %(ref)s is paid through %(provider)s, not %(this)s.")
            % {
                "ref": session.reference,
                "provider": session.get_provider_display(),
                "this": row.get_provider_display(),
            },
            code="wrong_provider",
        )
    if session.status in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
        raise PaymentError(
            _("Session %(ref)s is already paid: refund this money at the provider instead.")
            % {"ref": session.reference},
            code="already_paid",
        )
    facts = {
        "unmatched_payment": row.pk,
        "provider_payment_id": row.provider_payment_id,
        "amount": row.amount,
        "currency": row.currency,
    }
    evidence = replace(evidence, data={**evidence.data, **facts})
    notification = Notification(
        reference=session.reference,
        provider_payment_id=row.provider_payment_id,
        state=PaymentState.APPROVED,
        amount=row.amount,
        currency=row.currency or None,
        provider_status=row.provider_status,
    )

    def link(results) -> None:
        switched, result = results
        if isinstance(switched, Exception):
            raise switched  # nothing of it stays
        if isinstance(result, Exception):
            return
        if result.outcome in (ConfirmOutcome.ALREADY_PROCESSED, ConfirmOutcome.DUPLICATE_PAYMENT):
            # Paid between the check above and the lock: nothing of this stays.
            raise PaymentError(
                _("Session %(ref)s is already paid: refund this money at the provider instead.")
                % {"ref": result.session.reference},
                code="already_paid",
            )
        locked = UnmatchedPayment.objects.select_for_update().get(pk=row.pk)
        _refuse_if_not_attachable(locked)
        locked.session = result.session
        locked.attached_at = timezone.now()
        locked.attached_by = evidence.actor
        locked.reason = evidence.reason
        locked.save(update_fields=["session", "attached_at", "attached_by", "reason"])
        PaymentAudit.objects.create(
            session=result.session,
            action="unmatched_attached",
            from_status=result.session.status,
            to_status=result.session.status,
            source=evidence.source,
            actor=evidence.actor,
            reason=evidence.reason,
            delivery=locked.delivery,
            data=facts,
        )

    # The session's own provider payment (its QR code, never paid) gives way to the one
    # that paid it, so that a later payment of the old one is seen as a second payment
    # (alerted) and a refund of this one finds the session.
    switch = Notification(
        reference=session.reference,
        provider_payment_id=row.provider_payment_id,
        state=PaymentState.PROCESSING,
        provider_status=row.provider_status,
        replaces_payment_id=True,
    )
    try:
        _switched, result = notifications_apply(
            [Applied(switch, evidence), Applied(notification, evidence)],
            what="unmatched_attach",
            after=link,
        )
    except IntegrityError as exc:
        # Another attach gave this payment id to its session first (the unique provider
        # payment id): nothing of this one stayed.
        raise PaymentError(
            _("This money was attached to another session meanwhile."), code="already_attached"
        ) from exc
    if isinstance(result, Exception):
        raise result
    return result


def _refuse_if_not_attachable(row: UnmatchedPayment) -> None:
    if row.session_id is not None:
        raise PaymentError(
            _("This money is already attached to %(ref)s.") % {"ref": row.session.reference},
            code="already_attached",
        )
    if row.state != PaymentState.APPROVED:
        raise PaymentError(
            _("This payment is %(status)s at the provider: there is no money to attach.")
            % {"status": row.provider_status},
            code="not_money",
        )
