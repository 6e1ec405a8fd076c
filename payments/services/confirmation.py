"""The one confirmation path, and its siblings (fail, cancel, expire, refund, processing).

Every way money is confirmed — a webhook, a poll, a cashier, staff, the reconciler, the
wallet — ends in `payment_confirm`. Each function here runs in one transaction, locks the
session row, re-checks its state after locking, writes an audit row naming its evidence,
and publishes events that leave only after commit. Terminal states never regress.

`payment_confirm`, `payment_fulfil` and `payment_refund` own their transaction: called
inside a caller's atomic block they raise TransactionContractError (see
`payments.services.transactions`), so what they record cannot be rolled back by a caller.

Wallet credit is Confirma's own money: when what it paid for is refused, the credit goes
back to the wallet in the same transaction (a ledger entry and an audit row naming why).
Provider money that cannot be delivered is kept, flagged for refund and alerted.
"""

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.text import text_storable
from notifications.audiences import audience_payment, audience_user
from notifications.services import (
    alert_raise,
    event_publish,
    events_batched,
    events_discard_after,
    events_mark,
)
from payments.errors import FulfilmentRefused, PaymentError, PaymentNotFound, UnknownPurpose
from payments.models import (
    CLOSED_UNPAID_STATUSES,
    OPEN_STATUSES,
    PAID_STATUSES,
    AuditSource,
    Coupon,
    CouponRedemption,
    PartialPayment,
    PartialStatus,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    payment_status_move,
    payment_transition_check,
)
from payments.providers import Notification, PaymentState, own_money
from payments.registry import Purpose, purpose_get
from payments.services.transactions import (
    TransactionContractError,
    confirmation_transaction,
    in_purchase_transaction,
)
from payments.services.wallet import wallet_return
from payments.signals import payment_confirmed_send, payment_status_changed_send

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    """Who or what is acting, and on what grounds (kept on the audit row)."""

    source: AuditSource
    actor: object | None = None
    reason: str = ""
    delivery: object | None = None
    data: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.source == AuditSource.STAFF and not self.reason.strip():
            raise PaymentError(
                _("A reason is required for a staff action."), code="reason_required"
            )


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_PROCESSED = "already_processed"
    DUPLICATE_PAYMENT = "duplicate_payment"
    MISMATCH = "mismatch"
    LATE = "late"
    CHANGED = "changed"
    IGNORED = "ignored"


@dataclass
class ConfirmResult:
    outcome: ConfirmOutcome
    session: PaymentSession
    fulfilled: bool = False

    @property
    def changed(self) -> bool:
        return self.outcome not in (ConfirmOutcome.ALREADY_PROCESSED, ConfirmOutcome.IGNORED)


_batch = threading.local()
# The evidence of each confirmation whose fulfilment is running, by session id.
_fulfilling = threading.local()


def fulfilment_evidence(session: PaymentSession) -> Evidence | None:
    """Who or what confirmed `session`, while its purpose fulfils it (for the purpose's own
    audit trail); None outside its fulfilment."""
    return getattr(_fulfilling, "evidence", {}).get(session.pk)


@contextmanager
def _evidence_for(sessions, evidences):
    previous = getattr(_fulfilling, "evidence", {})
    _fulfilling.evidence = {
        **previous,
        **{session.pk: evidence for session, evidence in zip(sessions, evidences, strict=True)},
    }
    try:
        yield
    finally:
        _fulfilling.evidence = previous


@contextmanager
def _sessions_locked(references, payment_ids):
    """Lock the sessions of a batch at once, in primary-key order (two batches sharing
    sessions never wait on each other in a circle); `_lock` then finds them here. Which
    sessions already hold the batch's provider payment ids is read at once too, and audit
    rows are written together at the end."""
    asked = set(references)
    sessions = PaymentSession.objects.select_for_update().filter(reference__in=asked)
    _batch.locked = {session.reference: session for session in sessions.order_by("pk")}
    _batch.asked = asked
    _batch.payment_ids = {pid for pid in payment_ids if pid}
    _batch.holders = {}
    providers = {session.provider for session in _batch.locked.values()}
    if _batch.payment_ids and providers:
        holders = PaymentSession.objects.filter(
            provider__in=providers, provider_payment_id__in=_batch.payment_ids
        )
        for provider, payment_id, pk in holders.values_list(
            "provider", "provider_payment_id", "pk"
        ):
            _batch.holders.setdefault((provider, payment_id), set()).add(pk)
    _batch.audits = []
    try:
        yield
        PaymentAudit.objects.bulk_create(_batch.audits)
    finally:
        _batch.locked = _batch.asked = _batch.payment_ids = _batch.holders = None
        _batch.audits = _batch.pending = None


def _lock(reference: str) -> PaymentSession:
    locked = getattr(_batch, "locked", None)
    if locked is not None and reference in _batch.asked:
        if reference in locked:
            return locked[reference]
        raise PaymentNotFound(reference)
    try:
        return PaymentSession.objects.select_for_update().get(reference=reference)
    except PaymentSession.DoesNotExist:
        raise PaymentNotFound(reference) from None


def _audit(session, action: str, evidence: Evidence, *, before: str = "", data=None) -> None:
    audit = PaymentAudit(
        session=session,
        action=action,
        from_status=before,
        to_status=session.status,
        source=evidence.source,
        actor=evidence.actor,
        reason=evidence.reason,
        delivery=evidence.delivery,
        data={**evidence.data, **(data or {})},
    )
    pending = getattr(_batch, "audits", None)
    if pending is not None:
        pending.append(audit)  # written with the batch's others
    else:
        audit.save()
    logger.info(
        "payment %s %s (%s -> %s) by %s",
        session.reference,
        action,
        before or "-",
        session.status,
        evidence.source,
        extra={"reference": session.reference},
    )


def _refuse_if_taken(session: PaymentSession, provider_payment_id: str) -> None:
    """A provider payment id belongs to one session of its provider: refuse to give this
    session one that another already holds (caller holds the session lock)."""
    batch_ids = getattr(_batch, "payment_ids", None)
    if batch_ids is not None and provider_payment_id in batch_ids:
        holders = _batch.holders.setdefault((session.provider, provider_payment_id), set())
        taken = bool(holders - {session.pk})
        if not taken:
            holders.add(session.pk)  # the caller gives it to this session now
    else:
        taken = (
            PaymentSession.objects.filter(
                provider=session.provider, provider_payment_id=provider_payment_id
            )
            .exclude(pk=session.pk)
            .exists()
        )
    if taken:
        raise PaymentError(
            "This provider payment belongs to another session.", code="provider_payment_taken"
        )


# What confirming and fulfilling change on a session (saved with update_fields).
OUTCOME_FIELDS = [
    "provider_payment_id",
    "paid_amount",
    "paid_currency",
    "status",
    "completed_at",
    "fulfilled_at",
    "amount_mismatch",
    "late_payment",
    "refund_due",
    "fulfilment_error",
    "fulfilment_attempts",
    "closed_at",
]


def session_audiences(session: PaymentSession) -> list[str]:
    """Who waits on a session: its customer, and whoever holds its payment token."""
    audiences = [audience_payment(session.reference)]
    if session.user_id:
        audiences.insert(0, audience_user(session.user_id))
    return audiences


def _publish(session: PaymentSession, type: str, **extra) -> None:
    event_publish(
        audience=session_audiences(session),
        type=type,
        payload={
            "reference": session.reference,
            "purpose": session.purpose,
            "status": session.status,
            "amount": session.amount,
            "currency": session.currency,
            **extra,
        },
    )


def _status_move(session: PaymentSession, to: str, *, late: bool = False) -> str:
    """`payment_status_move`, and `payment_status_changed` for it once it commits."""
    before = payment_status_move(session, to, late=late)
    payment_status_changed_send(session=session, previous_status=before)
    return before


def _alert(session: PaymentSession, code: str, message: str, **context) -> None:
    alert_raise(
        code=code,
        message=message,
        context={"reference": session.reference, "purpose": session.purpose, **context},
    )


def _note_hold(session: PaymentSession, reason: str) -> None:
    """Let the purpose record a held or refunded payment in its own history."""
    mark = events_mark()
    try:
        with transaction.atomic():
            purpose_get(session.purpose).on_hold(session=session, reason=reason)
    except Exception:
        events_discard_after(mark)
        logger.exception("purpose %s could not note %s", session.purpose, reason)


def _redeem_coupon(session: PaymentSession) -> None:
    if not session.coupon_id:
        return
    _, created = CouponRedemption.objects.get_or_create(
        session=session, defaults={"coupon_id": session.coupon_id}
    )
    if created:
        Coupon.objects.filter(pk=session.coupon_id).update(used_count=F("used_count") + 1)


def _return_credit(session: PaymentSession, evidence: Evidence, *, why: str) -> bool:
    """Give a refused wallet payment's credit back: a ledger entry, the session refunded,
    an audit row naming why (the customer is told after the save). False when it spent no
    credit. Caller holds the session lock and saves OUTCOME_FIELDS; it runs in the
    confirmation's transaction, never later."""
    entry = wallet_return(session=session, reason=why)
    if entry is None:
        return False
    before = _status_move(session, PaymentStatus.REFUNDED)
    session.closed_at = timezone.now()
    session.refund_due = False
    _audit_credit_returned(session, evidence, before=before, why=why, entry=entry)
    _note_hold(session, "refund")
    return True


def _audit_credit_returned(session, evidence, *, before: str, why: str, entry) -> None:
    """The audit row of credit going back to the wallet (`entry`, its ledger entry)."""
    _audit(
        session,
        "credit_returned",
        evidence,
        before=before,
        data={
            "why": why,
            "amount": entry.amount,
            "currency": session.currency,
            "ledger_entry": entry.pk,
            "balance_after": entry.balance_after,
        },
    )


def _publish_if_returned(session: PaymentSession) -> None:
    if session.status == PaymentStatus.REFUNDED:
        _publish(session, "payment.refunded", reason="credit_returned")


def _run_fulfilment(session: PaymentSession, evidence: Evidence) -> bool:
    """Run the purpose's handler in a savepoint. Caller holds the session lock.

    On failure the payment stays completed, the error is kept, and staff are alerted.
    """
    session.fulfilment_attempts += 1
    mark = events_mark()
    try:
        with _evidence_for([session], [evidence]), transaction.atomic():
            purpose_get(session.purpose).fulfil(session=session)
    except FulfilmentRefused as exc:
        events_discard_after(mark)
        session.fulfilment_error = f"refused: {exc}"[:2000]
        _audit(
            session, "fulfilment_refused", evidence, before=session.status, data={"error": str(exc)}
        )
        if _return_credit(session, evidence, why=session.fulfilment_error):
            return False
        session.refund_due = True
        _alert(
            session,
            "payment.refund_due",
            _("Paid, but cannot be delivered: refund due."),
            error=str(exc),
        )
        return False
    except (OperationalError, InterfaceError) as exc:
        if _connection_lost() or lock_conflict(exc):
            # Not the fulfilment's failure: the whole confirmation did not happen, and is
            # tried again (a deadlock or serialization failure passes on a second try).
            raise
        events_discard_after(mark)
        return _fulfilment_failed(session, evidence, exc)
    except Exception as exc:
        events_discard_after(mark)
        return _fulfilment_failed(session, evidence, exc)
    _fulfilled(session, evidence)
    return True


def _fulfilled(session: PaymentSession, evidence: Evidence) -> None:
    session.fulfilled_at = timezone.now()
    session.fulfilment_error = ""
    _audit(session, "fulfilled", evidence, before=session.status)


def _run_fulfilments(pending: list["_Pending"]) -> list[bool]:
    """Fulfil the batch's confirmed sessions (caller holds their locks): per purpose, all
    at once in one savepoint when the purpose can (`Purpose.fulfil_many`); when that
    fails, or the purpose cannot, each in its own savepoint, so one failing fulfilment
    never holds back the others. Whether each was fulfilled, in order."""
    done: dict[int, bool] = {}
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(pending):
        groups.setdefault(item.session.purpose, []).append(index)
    for name, indexes in groups.items():
        sessions = [pending[index].session for index in indexes]
        evidences = [pending[index].evidence for index in indexes]
        if len(indexes) > 1 and _fulfil_many(name, sessions, evidences):
            for index in indexes:
                item = pending[index]
                item.session.fulfilment_attempts += 1
                _fulfilled(item.session, item.evidence)
                done[index] = True
            continue
        for index in indexes:
            done[index] = _run_fulfilment(pending[index].session, pending[index].evidence)
    return [done[index] for index in range(len(pending))]


def _fulfil_many(name: str, sessions: list[PaymentSession], evidences: list[Evidence]) -> bool:
    """Whether the purpose fulfilled all of `sessions` at once (False: it cannot, or one
    of them failed and nothing was kept; they are then fulfilled one by one)."""
    try:
        purpose = purpose_get(name)
    except UnknownPurpose:
        return False
    if type(purpose).fulfil_many is Purpose.fulfil_many:
        return False
    mark = events_mark()
    try:
        with _evidence_for(sessions, evidences), transaction.atomic():
            purpose.fulfil_many(sessions=sessions)
    except (OperationalError, InterfaceError) as exc:
        if _connection_lost() or lock_conflict(exc):
            raise
        events_discard_after(mark)
        return False
    except Exception:
        events_discard_after(mark)
        logger.info("%s: fulfilling %d at once failed; one by one", name, len(sessions))
        return False
    return True


def _sessions_save(sessions: list[PaymentSession]) -> None:
    """Save OUTCOME_FIELDS of `sessions` (caller holds their locks): on PostgreSQL in one
    UPDATE … FROM (VALUES …), elsewhere one by one."""
    if len(sessions) < 2 or transaction.get_connection().vendor != "postgresql":
        for session in sessions:
            session.save(update_fields=OUTCOME_FIELDS)
        return
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    meta = PaymentSession._meta
    fields = [meta.get_field(name) for name in OUTCOME_FIELDS]
    row = ", ".join(
        [f"%s::{meta.pk.rel_db_type(connection)}"]
        + [f"%s::{field.db_type(connection)}" for field in fields]
    )
    names = ", ".join(["id"] + [f"f{i}" for i in range(len(fields))])
    assignments = ", ".join(f"{quote(field.column)} = v.f{i}" for i, field in enumerate(fields))
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 (names, not values)
        f"FROM (VALUES {', '.join(f'({row})' for _ in sessions)}) AS v({names}) "
        f"WHERE t.{quote(meta.pk.column)} = v.id"
    )
    params = []
    for session in sessions:
        params.append(session.pk)
        params.extend(
            field.get_db_prep_save(getattr(session, field.attname), connection) for field in fields
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# PostgreSQL's deadlock, serialization failure and lock-not-available errors.
LOCK_CONFLICTS = {"40P01", "40001", "55P03"}


def lock_conflict(exc: BaseException) -> bool:
    """True for an error that trying again can clear: two transactions took locks in
    conflicting orders (PostgreSQL rolled one back)."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) in LOCK_CONFLICTS:
            return True
        exc = exc.__cause__
    return False


def _connection_lost() -> bool:
    raw = transaction.get_connection().connection
    return raw is None or bool(getattr(raw, "closed", False))


def _fulfilment_failed(session: PaymentSession, evidence: Evidence, exc: Exception) -> bool:
    """Keep the payment completed with the error, audited and alerted (retried later)."""
    logger.error("fulfilment of %s failed", session.reference, exc_info=exc)
    session.fulfilment_error = f"{exc.__class__.__name__}: {exc}"[:2000]
    _audit(
        session,
        "fulfilment_failed",
        evidence,
        before=session.status,
        data={"error": session.fulfilment_error},
    )
    _alert(
        session,
        "payment.fulfilment_failed",
        _("Payment completed but fulfilment failed; it will be retried."),
        error=session.fulfilment_error,
    )
    return False


def payment_confirm(
    *,
    reference: str,
    evidence: Evidence,
    amount: Decimal | None = None,
    currency: str | None = None,
    provider_payment_id: str = "",
    only_if_open: bool = False,
) -> ConfirmResult:
    """Record that the money for `reference` arrived, and fulfil what it paid for.

    Exactly once: a second call for the same session returns ALREADY_PROCESSED and does
    nothing else (a different provider payment for a completed session is recorded as a
    DUPLICATE_PAYMENT and alerted). An amount or currency mismatch is recorded and
    alerted, not fulfilled; a payment for an expired, cancelled or failed session is
    recorded as LATE and flagged for a refund decision — unless `only_if_open`: a person
    who acted on what they saw (a cashier approving a proof) leaves a session that was
    closed meanwhile untouched, and gets IGNORED (with an audit row naming them and why).

    Owns its transaction: called inside a caller's atomic block it raises
    TransactionContractError. When it returns, the completion, its audit rows and alerts
    are committed, whether or not fulfilment succeeded (`result.fulfilled`).
    """
    evidence.check()
    notification = Notification(
        reference=reference,
        provider_payment_id=str(provider_payment_id or ""),
        state=PaymentState.APPROVED,
        amount=amount,
        currency=currency,
    )
    (result,) = notifications_apply(
        [Applied(notification, evidence, only_if_open=only_if_open)], what="payment_confirm"
    )
    if isinstance(result, Exception):
        raise result
    return result


def payment_confirm_in_purchase(
    *, reference: str, evidence: Evidence, amount: Decimal, currency: str
) -> ConfirmResult:
    """`payment_confirm` for a purchase paid at once (wallet credit, a free price), inside
    the purchase's own transaction (`purchase_transaction()`), which must be the innermost
    open block: the payment, what it spent and what it bought commit together."""
    evidence.check()
    if not in_purchase_transaction():
        raise TransactionContractError(
            "payment_confirm_in_purchase runs directly inside purchase_transaction()."
        )
    return _confirm(reference, evidence, amount=amount, currency=currency)


def _confirm(
    reference: str,
    evidence: Evidence,
    *,
    amount: Decimal | None = None,
    currency: str | None = None,
    provider_payment_id: str = "",
    only_if_open: bool = False,
) -> ConfirmResult:
    provider_payment_id = str(provider_payment_id or "")
    session = _lock(reference)
    if only_if_open and session.status in CLOSED_UNPAID_STATUSES:
        # Nothing changes, but who tried to confirm it, and why not, stays in the trail.
        _audit(
            session,
            "ignored_confirmation",
            evidence,
            before=session.status,
            data={"why": "session no longer open", "amount": amount, "currency": currency},
        )
        return ConfirmResult(ConfirmOutcome.IGNORED, session)
    if session.status in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
        other = session.provider_payment_id and provider_payment_id
        if other and provider_payment_id != session.provider_payment_id:
            _audit(
                session,
                "duplicate_payment",
                evidence,
                before=session.status,
                data={"provider_payment_id": provider_payment_id, "amount": amount},
            )
            _alert(
                session,
                "payment.duplicate",
                _("A second payment arrived for a paid session: refund it."),
                provider_payment_id=provider_payment_id,
            )
            return ConfirmResult(ConfirmOutcome.DUPLICATE_PAYMENT, session)
        return ConfirmResult(ConfirmOutcome.ALREADY_PROCESSED, session)

    payment_transition_check(session.status, PaymentStatus.COMPLETED, late=True)
    if provider_payment_id and not session.provider_payment_id:
        _refuse_if_taken(session, provider_payment_id)
        session.provider_payment_id = provider_payment_id
    now = timezone.now()
    session.paid_amount = session.amount if amount is None else Decimal(amount)
    session.paid_currency = (currency or session.currency).upper()
    before = _status_move(session, PaymentStatus.COMPLETED, late=True)
    session.completed_at = now
    _audit(
        session,
        "completed",
        evidence,
        before=before,
        data={
            "paid_amount": session.paid_amount,
            "paid_currency": session.paid_currency,
            "provider_payment_id": provider_payment_id,
        },
    )
    _redeem_coupon(session)

    unstated = amount is None and evidence.source in (AuditSource.WEBHOOK, AuditSource.POLL)
    mismatch = (
        unstated
        or session.paid_amount != session.amount
        or (session.paid_currency != session.currency)
    )
    fulfilled = False
    if mismatch:
        outcome = ConfirmOutcome.MISMATCH
        session.amount_mismatch = True
        session.fulfilment_error = (
            f"amount mismatch: paid {session.paid_amount} {session.paid_currency}, "
            f"expected {session.amount} {session.currency}"
        )
        _audit(session, "amount_mismatch", evidence, before=session.status)
        _alert(
            session,
            "payment.amount_mismatch",
            _("Amount or currency does not match."),
            paid=f"{session.paid_amount} {session.paid_currency}",
            expected=f"{session.amount} {session.currency}",
        )
    elif before in CLOSED_UNPAID_STATUSES:
        outcome = ConfirmOutcome.LATE
        session.late_payment = True
        session.refund_due = True
        session.fulfilment_error = f"late payment: the session was {before}"
        _audit(session, "late_payment", evidence, before=session.status)
        _alert(
            session,
            "payment.late",
            _("Money arrived for a closed session: fulfil it or refund it."),
            was=before,
        )
    else:
        outcome = ConfirmOutcome.CONFIRMED
        if getattr(_batch, "pending", None) is not None:
            return _Pending(session, evidence)  # fulfilled with the batch's others
        fulfilled = _run_fulfilment(session, evidence)
    session.save(update_fields=OUTCOME_FIELDS)
    return _confirm_end(session, outcome, fulfilled)


def _confirm_end(session: PaymentSession, outcome: ConfirmOutcome, fulfilled: bool):
    """Tell who waits on `session` how its confirmation ended (session saved)."""
    if outcome != ConfirmOutcome.CONFIRMED:
        _note_hold(session, outcome.value)
    if outcome == ConfirmOutcome.CONFIRMED:
        _publish(session, "payment.confirmed", fulfilled=fulfilled)
        payment_confirmed_send(session=session, fulfilled=fulfilled)
        _publish_if_returned(session)
    else:
        _publish(session, "payment.review", reason=outcome.value)
    return ConfirmResult(outcome, session, fulfilled)


def payment_fulfil(*, reference: str, evidence: Evidence, accept_review: bool = False):
    """Re-run fulfilment of a completed session whose fulfilment failed or whose result is
    missing (reconciler, staff).

    Sessions held for review (amount mismatch, late payment) need `accept_review`, which
    only staff with a reason may give. Exactly once: a fulfilled session is left alone.
    Owns its transaction, like `payment_confirm`.
    """
    evidence.check()
    with confirmation_transaction("payment_fulfil"):
        session = _lock(reference)
        delivered = session.fulfilled_at is not None and purpose_get(session.purpose).is_fulfilled(
            session=session
        )
        if session.status != PaymentStatus.COMPLETED or delivered:
            return ConfirmResult(
                ConfirmOutcome.ALREADY_PROCESSED, session, session.fulfilled_at is not None
            )
        if session.amount_mismatch or session.late_payment or session.refund_due:
            if not accept_review or evidence.source != AuditSource.STAFF:
                raise PaymentError(
                    _("This payment needs a staff decision before fulfilment."), code="needs_review"
                )
            _audit(session, "review_accepted", evidence, before=session.status)
            session.amount_mismatch = session.late_payment = session.refund_due = False
        fulfilled = _run_fulfilment(session, evidence)
        session.save(update_fields=OUTCOME_FIELDS)
        if fulfilled:
            _publish(session, "payment.confirmed", fulfilled=True)
            payment_confirmed_send(session=session, fulfilled=True)
        _publish_if_returned(session)
        return ConfirmResult(ConfirmOutcome.CONFIRMED, session, fulfilled)


def _about_other_payment(session, provider_payment_id: str, evidence, action: str) -> bool:
    """True (and audited) when a notice names a provider payment other than the one this
    session was paid with: it must not change this session."""
    if (
        provider_payment_id
        and session.provider_payment_id
        and (provider_payment_id != session.provider_payment_id)
    ):
        _audit(
            session,
            f"ignored_{action}_other_payment",
            evidence,
            before=session.status,
            data={"provider_payment_id": provider_payment_id},
        )
        return True
    return False


def _close(
    reference: str,
    evidence: Evidence,
    to: PaymentStatus,
    event: str,
    *,
    only_if_due: bool = False,
    provider_payment_id: str = "",
) -> ConfirmResult:
    evidence.check()
    with transaction.atomic():
        session = _lock(reference)
        before = session.status
        if before == to:
            return ConfirmResult(ConfirmOutcome.ALREADY_PROCESSED, session)
        if _about_other_payment(session, provider_payment_id, evidence, to.value):
            return ConfirmResult(ConfirmOutcome.IGNORED, session)
        if before not in OPEN_STATUSES or (only_if_due and session.expires_at > timezone.now()):
            # Terminal states never regress; keep the notification in the trail.
            _audit(session, f"ignored_{to.value}", evidence, before=before)
            return ConfirmResult(ConfirmOutcome.IGNORED, session)
        if provider_payment_id and not session.provider_payment_id:
            _refuse_if_taken(session, provider_payment_id[:100])
            session.provider_payment_id = provider_payment_id[:100]
        _status_move(session, to)
        session.closed_at = timezone.now()
        session.save(update_fields=["status", "closed_at", "provider_payment_id"])
        _audit(session, to.value, evidence, before=before)
        _publish(session, event)
        return ConfirmResult(ConfirmOutcome.CHANGED, session)


def payment_fail(*, reference: str, evidence: Evidence, provider_payment_id: str = ""):
    """The provider says the payment failed or was rejected."""
    return _close(
        reference,
        evidence,
        PaymentStatus.FAILED,
        "payment.failed",
        provider_payment_id=provider_payment_id,
    )


def payment_cancel(*, reference: str, evidence: Evidence, provider_payment_id: str = ""):
    return _close(
        reference,
        evidence,
        PaymentStatus.CANCELLED,
        "payment.cancelled",
        provider_payment_id=provider_payment_id,
    )


def payment_expire(
    *, reference: str, evidence: Evidence, force: bool = False, provider_payment_id: str = ""
) -> ConfirmResult:
    """Expire an open session whose expiry has passed (or any open one, with `force`:
    the provider says it expired)."""
    return _close(
        reference,
        evidence,
        PaymentStatus.EXPIRED,
        "payment.expired",
        only_if_due=not force,
        provider_payment_id=provider_payment_id,
    )


def payment_mark_processing(
    *, reference: str, evidence: Evidence, provider_payment_id: str = "", replace: bool = False
) -> ConfirmResult:
    """The provider has seen the payment but not settled it (pending → processing).

    `provider_payment_id` is remembered when the session has none yet (or, with `replace`,
    when the provider started a new attempt for the still-open session)."""
    provider_payment_id = str(provider_payment_id or "")[:100]
    with transaction.atomic():
        session = _lock(reference)
        known = session.provider_payment_id
        if (
            provider_payment_id
            and session.status in OPEN_STATUSES
            and provider_payment_id != known
            and (not known or replace)
        ):
            _refuse_if_taken(session, provider_payment_id)
            session.provider_payment_id = provider_payment_id
            session.save(update_fields=["provider_payment_id"])
            _audit(
                session,
                "provider_payment",
                evidence,
                before=session.status,
                data={"provider_payment_id": provider_payment_id, "previous": known},
            )
        if session.status != PaymentStatus.PENDING:
            return ConfirmResult(ConfirmOutcome.IGNORED, session)
        _status_move(session, PaymentStatus.PROCESSING)
        session.save(update_fields=["status"])
        _audit(session, "processing", evidence, before=PaymentStatus.PENDING)
        _publish(session, "payment.processing")
        return ConfirmResult(ConfirmOutcome.CHANGED, session)


def _refuse_partial_credit_refund(session: PaymentSession, amount) -> None:
    """A wallet payment's credit goes back whole (one refund entry per session): refuse
    any other amount rather than return more than was asked. Caller holds the lock."""
    paid = session.paid_amount if session.paid_amount is not None else session.amount
    if amount is None or Decimal(amount) == paid:
        return
    raise PaymentError(
        _(
            "A payment made from credit can only be refunded in full: %(paid)s %(currency)s "
            "go back to the wallet. Leave the amount empty or enter %(paid)s."
        )
        % {"paid": paid, "currency": session.currency},
        code="partial_refund",
    )


def payment_refund(
    *,
    reference: str,
    evidence: Evidence,
    chargeback: bool = False,
    amount: Decimal | None = None,
    provider_payment_id: str = "",
) -> ConfirmResult:
    """Record a refund or chargeback. Only a completed payment becomes refunded; a repeat
    changes nothing; a notice about another provider payment (e.g. a refunded duplicate) or
    for a payment that is not completed keeps the status and is recorded and alerted.

    A payment made from wallet credit is refunded by giving the credit back: in the same
    transaction, a refund ledger entry (one per session) and a `credit_returned` audit row
    naming who and why. It is refunded in full only: an `amount` other than what it paid
    raises PaymentError ("partial_refund") and changes nothing. Owns its transaction, like
    `payment_confirm`."""
    evidence.check()
    with confirmation_transaction("payment_refund"):
        return _refund(reference, evidence, chargeback, amount, provider_payment_id)


def _refund(reference, evidence, chargeback, amount, provider_payment_id) -> ConfirmResult:
    kind = "chargeback" if chargeback else "refund"
    session = _lock(reference)
    before = session.status
    if before == PaymentStatus.REFUNDED:
        return ConfirmResult(ConfirmOutcome.ALREADY_PROCESSED, session)
    if _about_other_payment(session, provider_payment_id, evidence, kind):
        _alert(
            session,
            f"payment.{kind}_other_payment",
            _("A refund was recorded for a second payment of this session."),
            provider_payment_id=provider_payment_id,
        )
        return ConfirmResult(ConfirmOutcome.IGNORED, session)
    if before != PaymentStatus.COMPLETED:
        _audit(session, f"ignored_{kind}", evidence, before=before, data={"amount": amount})
        _alert(
            session,
            f"payment.{kind}_unexpected",
            _("A refund notice arrived for a payment that is not completed."),
        )
        return ConfirmResult(ConfirmOutcome.IGNORED, session)
    returned = None
    if own_money(session.provider):
        _refuse_partial_credit_refund(session, amount)
        # Confirma's own money: the refund is the credit going back to the wallet.
        why = f"{kind} recorded: {evidence.reason}" if evidence.reason else f"{kind} recorded"
        returned = wallet_return(session=session, reason=why, actor=evidence.actor)
    _status_move(session, PaymentStatus.REFUNDED)
    session.refund_due = False
    session.closed_at = timezone.now()
    session.save(update_fields=["status", "refund_due", "closed_at"])
    _audit(session, kind, evidence, before=before, data={"amount": amount})
    if returned is not None:
        _audit_credit_returned(session, evidence, before=before, why=why, entry=returned)
    _note_hold(session, kind)
    _alert(
        session,
        f"payment.{kind}",
        _("A completed payment was refunded or charged back."),
        fulfilled=session.fulfilled_at is not None,
        credit_returned=returned is not None,
    )
    _publish(session, "payment.refunded", **({"reason": "credit_returned"} if returned else {}))
    return ConfirmResult(ConfirmOutcome.CHANGED, session)


# --- Part of the price arrived (payments/services/partial.py holds staff's decisions) ---

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


@dataclass(frozen=True)
class _Pending:
    """A confirmation whose fulfilment runs with the rest of its batch."""

    session: PaymentSession
    evidence: Evidence


@dataclass(frozen=True)
class Applied:
    """One notification to apply, with the evidence it is applied on."""

    notification: Notification
    evidence: Evidence
    only_if_open: bool = False


def _dispatch(item: Applied) -> ConfirmResult | None:
    """Apply one notification inside the batch's transaction (sessions already locked)."""
    notification, evidence = item.notification, item.evidence
    reference = notification.reference or ""
    state = notification.state
    payment_id = notification.provider_payment_id
    if state == PaymentState.APPROVED:
        return _confirm(
            reference,
            evidence,
            amount=notification.amount,
            currency=notification.currency,
            provider_payment_id=payment_id,
            only_if_open=item.only_if_open,
        )
    if state == PaymentState.PARTIALLY_PAID:
        return partial_payment_hold(notification=notification, evidence=evidence)
    if state == PaymentState.PROCESSING:
        return payment_mark_processing(
            reference=reference,
            evidence=evidence,
            provider_payment_id=payment_id,
            replace=notification.replaces_payment_id,
        )
    if state == PaymentState.FAILED:
        return payment_fail(reference=reference, evidence=evidence, provider_payment_id=payment_id)
    if state == PaymentState.CANCELLED:
        return payment_cancel(
            reference=reference, evidence=evidence, provider_payment_id=payment_id
        )
    if state == PaymentState.EXPIRED:
        return payment_expire(
            reference=reference, evidence=evidence, force=True, provider_payment_id=payment_id
        )
    if state in (PaymentState.REFUNDED, PaymentState.CHARGED_BACK):
        return _refund(
            reference, evidence, state == PaymentState.CHARGED_BACK, notification.amount, payment_id
        )
    return None  # pending: nothing to do


def notifications_apply(
    items: list[Applied], *, what: str = "notifications_apply", after=None
) -> list[ConfirmResult | PaymentError | PaymentNotFound | None]:
    """Apply a batch of notifications through the one confirmation path, in one durable
    transaction: their sessions locked at once in primary-key order, then each applied in
    turn (a confirmation is a batch of one). Per item: its ConfirmResult, None (nothing to
    do), or the PaymentError that refused it (unknown reference, a provider payment held by
    another session), raised before it wrote anything. `after(results)`, when given, runs
    last in the same transaction (the webhook workers record the deliveries' outcomes
    there, so an outcome and its effects commit together).

    Any other error rolls the whole batch back and is raised: the caller applies the items
    one by one to isolate the one at fault.
    """
    for item in items:
        item.evidence.check()
    with confirmation_transaction(what), events_batched():
        references = [item.notification.reference for item in items if item.notification.reference]
        payment_ids = [item.notification.provider_payment_id for item in items]
        results: list = [None] * len(items)
        with _sessions_locked(references, payment_ids):
            _batch.pending = {}
            for index in _lock_order(items):
                item = items[index]
                if item.notification.reference in _batch.pending:
                    _pending_finish(results)  # what came first is fulfilled first
                events, audits = events_mark(), len(_batch.audits)
                try:
                    results[index] = _dispatch(item)
                except (PaymentError, PaymentNotFound) as exc:
                    events_discard_after(events)
                    del _batch.audits[audits:]
                    results[index] = exc
                if isinstance(results[index], _Pending):
                    _batch.pending[item.notification.reference] = index
            _pending_finish(results)
        if after is not None:
            after(results)
        return results


def _pending_finish(results: list) -> None:
    """Fulfil the batch's confirmations waiting for it, save their sessions together and
    tell who waits on them; their results replace the placeholders in `results`."""
    indexes = list(_batch.pending.values())
    _batch.pending.clear()
    if not indexes:
        return
    pending = [results[index] for index in indexes]
    fulfilled = _run_fulfilments(pending)
    _sessions_save([item.session for item in pending])
    for index, item, done in zip(indexes, pending, fulfilled, strict=True):
        results[index] = _confirm_end(item.session, ConfirmOutcome.CONFIRMED, done)


def _lock_order(items: list[Applied]) -> list[int]:
    """The order a batch applies its items in: by purpose and the purpose's batch key
    (rows its fulfilment holds locked until commit), then as they arrived."""

    def key(index: int):
        session = _batch.locked.get(items[index].notification.reference or "")
        if session is None:
            return ("", (), index)
        try:
            order = purpose_get(session.purpose).batch_order(session=session)
        except UnknownPurpose:
            order = ()  # still confirmed: the money is recorded, fulfilment fails (alerted)
        return (session.purpose, order, index)

    return sorted(range(len(items)), key=key)


def notification_apply(notification: Notification, evidence: Evidence) -> ConfirmResult | None:
    """Apply one notification (a poll's answer, say): a batch of one; raises what refused it."""
    (result,) = notifications_apply([Applied(notification, evidence)])
    if isinstance(result, PaymentError | PaymentNotFound):
        raise result
    return result
