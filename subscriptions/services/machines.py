"""Pay-per-use machines: start a usage session, pay for it, activate, complete, staff fixes.

Taking a machine: every purchase locks the machine's row while it checks who holds the
machine and takes it, so two customers never both get it (a database constraint backs
this: at most one active usage session per machine).

- Credit: one transaction locks the machine, checks it is free, creates the usage session,
  spends the credit, confirms the payment and activates — or, machine busy or credit
  short, does none of it. Concurrent purchases wait for the lock and are refused with
  "machine busy" before anything is charged.
- PIX: the purchase holds the machine for a short while (`reserved_until`, from
  MACHINE_RESERVATION_MINUTES, 5 by default), however long the PIX itself stays payable
  (PAYMENT_SESSION_TTL_MINUTES); the hold ends early when the payment fails or is
  cancelled. During the hold others see the machine as reserved, with the hold's end, and
  are refused with a clear message; the customer paying is not. A customer has at most
  one PIX purchase of machine time waiting at a time (their row is locked while this is
  checked): a second one, on any machine, is refused with PixPaymentWaiting naming the
  machine being paid for, and the customer can cancel that payment from the machine's
  page (`machine_payment_cancel`), which frees the machine at once. A PIX paid after the
  hold ended still activates the machine if it is free; if someone took it meanwhile, the
  money is kept, flagged for refund and alerted.

Activation is the `machine_session` purpose's fulfilment: it runs inside the payment's
confirmation transaction with the payment session locked, then locks the machine and the
usage session (always in that order). A usage session is activated by exactly one payment
(a one-to-one column); a second payment for it is refused — wallet credit goes back to
the wallet at once, provider money is flagged for refund.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.services import event_publish
from payments.errors import FulfilmentRefused, IdempotencyConflict, InvalidParams
from payments.models import OPEN_STATUSES, PaymentSession, PaymentStatus, Provider
from payments.registry import Purpose, Quote
from subscriptions.errors import (
    MachineBusy,
    MachineError,
    MachineNotFound,
    MachineReserved,
    PixPaymentWaiting,
)
from subscriptions.models import (
    Machine,
    PriceOption,
    UsageEvent,
    UsageSession,
    UsageStatus,
    hash_token,
    new_device_token,
)
from subscriptions.selectors import customer_machine_payment_open, machine_holder

logger = logging.getLogger(__name__)


def machine_device_token_rotate(*, machine: Machine) -> str:
    """Give the machine's controller a new token (returned once; only its hash is kept)."""
    token = new_device_token()
    Machine.objects.filter(pk=machine.pk).update(device_token_hash=hash_token(token))
    return token


def machine_for_device_token(token: str) -> Machine | None:
    if not token or not token.startswith("mdt_"):
        return None
    return Machine.objects.filter(device_token_hash=hash_token(token), active=True).first()


def _usage_payload(usage: UsageSession) -> dict:
    return {
        "usage_session": usage.pk,
        "machine": usage.machine.code,
        "machine_name": usage.machine.name,
        "minutes": usage.minutes,
        "status": usage.status,
        "started_at": usage.started_at,
        "ends_at": usage.ends_at,
    }


def _event(usage, type_, *, source="system", actor=None, reason="", **data) -> None:
    UsageEvent.objects.create(
        usage_session=usage, type=type_, source=source, actor=actor, reason=reason, data=data
    )
    logger.info(
        "usage session %s %s",
        usage.pk,
        type_,
        extra={"reference": getattr(usage.payment_session, "reference", "")},
    )


def _push_on(usage: UsageSession) -> None:
    event_publish(
        audience=f"machine:{usage.machine_id}",
        type="machine.activate",
        payload={"usage_session": usage.pk, "ends_at": usage.ends_at},
    )


def _push_off(usage: UsageSession, why: str) -> None:
    event_publish(
        audience=f"machine:{usage.machine_id}",
        type="machine.deactivate",
        payload={"usage_session": usage.pk, "reason": why},
    )
    event_publish(
        audience=f"user:{usage.customer_id}",
        type="machine_session.completed",
        payload=_usage_payload(usage),
    )


def _refuse_if_held(machine_id: int, *, customer_id: int, except_usage: int | None = None):
    holder = machine_holder(machine_id=machine_id, except_customer_id=customer_id)
    if holder is None or holder.pk == except_usage:
        return
    if holder.status == UsageStatus.ACTIVE:
        raise MachineBusy()
    raise MachineReserved(until=holder.reserved_until)


def _refuse_if_paying(customer) -> None:
    """PixPaymentWaiting when the customer already has a PIX purchase of machine time
    waiting. Locks the customer's row (before any machine row) so that two purchases of
    one customer are checked one after the other; caller is inside an atomic block."""
    get_user_model().objects.select_for_update().filter(pk=customer.pk).first()
    waiting = customer_machine_payment_open(customer_id=customer.pk)
    if waiting is not None:
        raise PixPaymentWaiting(machine=waiting.machine)


def usage_session_start(
    *, customer, machine_code: str, minutes: int, reserve: bool = False
) -> UsageSession:
    """A new usage session awaiting payment; MachineBusy when the machine is in use,
    MachineReserved when another customer is paying for it.

    Locks the machine's row while it checks and takes it: the caller's transaction keeps
    the lock (a credit purchase holds it until the payment is confirmed). With `reserve`
    (PIX) the usage session holds the machine for MACHINE_RESERVATION_MINUTES, and the
    customer's row is locked first: PixPaymentWaiting when they already have a PIX
    purchase of machine time waiting to be paid.
    """
    with transaction.atomic():
        if reserve:
            _refuse_if_paying(customer)
        machine = Machine.objects.select_for_update().filter(code=machine_code, active=True).first()
        if machine is None:
            raise MachineNotFound()
        option = PriceOption.objects.filter(machine=machine, minutes=minutes).first()
        if option is None:
            raise MachineError(
                _("Choose one of the machine's time options."), code="invalid_option"
            )
        _refuse_if_held(machine.pk, customer_id=customer.pk)
        now = timezone.now()
        hold = timedelta(minutes=max(0, settings.MACHINE_RESERVATION_MINUTES))
        usage = UsageSession.objects.create(
            customer=customer,
            machine=machine,
            minutes=minutes,
            amount=option.price,
            currency=machine.currency,
            created_at=now,
            reserved_until=now + hold if reserve else None,
        )
        _event(usage, "created", source="customer", actor=customer)
        return usage


class MachineSessionPurpose(Purpose):
    name = "machine_session"
    providers = (Provider.MERCADOPAGO, Provider.WALLET)

    def quote(self, *, params, user, amount, currency) -> Quote:
        usage_id = params.get("usage_session")
        if not isinstance(usage_id, int) or set(params) != {"usage_session"}:
            raise InvalidParams(_('params must be {"usage_session": <id>}.'))
        usage = (
            UsageSession.objects.select_related("machine")
            .filter(pk=usage_id, customer=user)
            .first()
        )
        if usage is None:
            raise InvalidParams(_("Unknown usage session."), code="usage_not_found")
        if usage.status != UsageStatus.AWAITING_PAYMENT:
            raise InvalidParams(
                _("This usage session is not waiting for payment."), code="usage_not_payable"
            )
        if not usage.machine.active:
            raise MachineNotFound()
        # An early answer; who takes the machine is decided under its lock.
        _refuse_if_held(usage.machine_id, customer_id=user.pk, except_usage=usage.pk)
        description = _("%(machine)s, %(minutes)d min") % {
            "machine": usage.machine.name,
            "minutes": usage.minutes,
        }
        return Quote(
            usage.amount,
            usage.currency,
            {"usage_session": usage.pk},
            description,
            {"machine": usage.machine.code},
        )

    def fulfil(self, *, session: PaymentSession) -> None:
        usage_id = session.params["usage_session"]
        machine_id = UsageSession.objects.values_list("machine_id", flat=True).get(pk=usage_id)
        Machine.objects.select_for_update().get(pk=machine_id)
        usage = UsageSession.objects.select_for_update().select_related("machine").get(pk=usage_id)
        if usage.payment_session_id == session.pk:
            return  # already activated by this payment
        if usage.payment_session_id or usage.status != UsageStatus.AWAITING_PAYMENT:
            raise FulfilmentRefused(_("this usage session was already paid or closed"))
        holder = machine_holder(machine_id=machine_id, except_customer_id=usage.customer_id)
        if holder is not None and holder.pk != usage.pk:
            if holder.status == UsageStatus.ACTIVE:
                raise FulfilmentRefused(_("the machine was taken by someone else"))
            raise FulfilmentRefused(_("the machine is reserved by someone else"))
        now = timezone.now()
        usage.status = UsageStatus.ACTIVE
        usage.started_at = now
        usage.ends_at = now + timedelta(minutes=usage.minutes)
        usage.payment_session = session
        usage.save(update_fields=["status", "started_at", "ends_at", "payment_session"])
        _event(usage, "activated", source=session.provider, reference=session.reference)
        event_publish(
            audience=f"user:{usage.customer_id}",
            type="machine_session.activated",
            payload={**_usage_payload(usage), "reference": session.reference},
        )
        _push_on(usage)

    def fulfilled_q(self):
        return Exists(UsageSession.objects.filter(payment_session=OuterRef("pk")))


def usage_sessions_complete_due(*, now=None, batch_size: int = 500) -> int:
    """Complete active sessions whose time is up; returns how many."""
    now = now or timezone.now()
    done = 0
    ids = list(
        UsageSession.objects.filter(status=UsageStatus.ACTIVE, ends_at__lte=now)
        .order_by("ends_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for pk in ids:
        with transaction.atomic():
            usage = UsageSession.objects.select_for_update().get(pk=pk)
            if usage.status != UsageStatus.ACTIVE or usage.ends_at > now:
                continue
            usage.status = UsageStatus.COMPLETED
            usage.ended_at = now
            usage.save(update_fields=["status", "ended_at"])
            _event(usage, "completed")
            _push_off(usage, "time_up")
            done += 1
    return done


def usage_sessions_expire_unpaid(*, older_than_minutes: int | None = None) -> int:
    """Usage sessions still awaiting payment with no open payment left become expired."""
    minutes = older_than_minutes or settings.PAYMENT_SESSION_TTL_MINUTES
    cutoff = timezone.now() - timedelta(minutes=minutes)
    done = 0
    candidates = UsageSession.objects.filter(
        status=UsageStatus.AWAITING_PAYMENT, created_at__lt=cutoff
    )
    for usage in candidates.iterator():
        open_payments = PaymentSession.objects.filter(
            purpose="machine_session", params__usage_session=usage.pk, status__in=OPEN_STATUSES
        )
        if open_payments.exists():
            continue
        with transaction.atomic():
            locked = UsageSession.objects.select_for_update().get(pk=usage.pk)
            if locked.status != UsageStatus.AWAITING_PAYMENT:
                continue
            locked.status = UsageStatus.EXPIRED
            locked.ended_at = timezone.now()
            locked.save(update_fields=["status", "ended_at"])
            _event(locked, "expired")
            done += 1
    return done


def _staff_lock(usage_id: int, reason: str) -> UsageSession:
    if not (reason or "").strip():
        raise MachineError(_("A reason is required for a staff action."), code="reason_required")
    usage = UsageSession.objects.select_for_update().select_related("machine").get(pk=usage_id)
    if usage.status != UsageStatus.ACTIVE:
        raise MachineError(_("Only an active session can be changed."), code="not_active")
    return usage


def usage_session_end(*, usage_session_id: int, actor, reason: str) -> UsageSession:
    """Staff end an active session now (audited; the machine and customer are told)."""
    with transaction.atomic():
        usage = _staff_lock(usage_session_id, reason)
        usage.status = UsageStatus.COMPLETED
        usage.ended_at = timezone.now()
        usage.save(update_fields=["status", "ended_at"])
        _event(usage, "ended_by_staff", source="staff", actor=actor, reason=reason)
        _push_off(usage, "ended_by_staff")
        return usage


def usage_session_extend(*, usage_session_id: int, minutes: int, actor, reason: str):
    """Staff add minutes to an active session (audited; pushed to machine and customer)."""
    if not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        raise MachineError(_("Extend by 1 to 1440 minutes."), code="invalid_minutes")
    with transaction.atomic():
        usage = _staff_lock(usage_session_id, reason)
        usage.ends_at += timedelta(minutes=minutes)
        usage.minutes += minutes
        usage.save(update_fields=["ends_at", "minutes"])
        _event(
            usage, "extended_by_staff", source="staff", actor=actor, reason=reason, minutes=minutes
        )
        _push_on(usage)
        event_publish(
            audience=f"user:{usage.customer_id}",
            type="machine_session.extended",
            payload=_usage_payload(usage),
        )
        return usage


def machine_session_buy(
    *, customer, machine_code: str, minutes: int, method: str, idempotency_key: str
):
    """Start a usage session and pay for it: `method` is "credit" (wallet, confirmed at
    once, all or nothing) or "pix" (a Mercado Pago PIX payment to be paid).

    Returns the payment session. Repeating a call with the same key returns the first
    payment session and starts nothing new. Machine in use: MachineBusy; another customer
    paying for it: MachineReserved; not enough credit: InsufficientCredit — in each case
    nothing is created or charged.

    Credit: the machine stays locked from the check to the confirmation, all in the
    purchase's own transaction (`purchase_transaction`), so concurrent purchases of one
    machine are refused before they are charged. Call it outside any atomic block. Should
    the activation be refused anyway, the credit is already back in the wallet when this
    returns (the payment session is then refunded) and MachineError says so.

    PIX: the usage session holds the machine for MACHINE_RESERVATION_MINUTES (released at
    once when the payment fails or is cancelled); PixPaymentWaiting when the customer
    already has a PIX purchase of machine time waiting — nothing is created.
    """
    from payments.services import payment_session_create
    from payments.services.transactions import purchase_transaction

    existing = PaymentSession.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.user_id != customer.pk:
            raise IdempotencyConflict()
        return existing
    if method not in ("credit", "pix"):
        raise MachineError(_("Choose how to pay."), code="invalid_method")
    if method == "credit":
        try:
            with purchase_transaction():
                usage = usage_session_start(
                    customer=customer, machine_code=machine_code, minutes=minutes
                )
                session = payment_session_create(
                    user=customer,
                    purpose="machine_session",
                    provider=Provider.WALLET,
                    params={"usage_session": usage.pk},
                    idempotency_key=idempotency_key,
                ).session
        except MachineBusy:
            # The same request sent twice at once: the first one took the machine.
            replay = PaymentSession.objects.filter(
                idempotency_key=idempotency_key, user=customer
            ).first()
            if replay is None:
                raise
            return replay
        if session.status == PaymentStatus.REFUNDED:
            raise MachineError(
                _("The machine could not be started; your credit was returned."),
                code="credit_returned",
            )
        return session
    usage = usage_session_start(
        customer=customer, machine_code=machine_code, minutes=minutes, reserve=True
    )
    try:
        session = payment_session_create(
            user=customer,
            purpose="machine_session",
            provider=Provider.MERCADOPAGO,
            params={"usage_session": usage.pk},
            idempotency_key=idempotency_key,
        ).session
    except Exception:
        # No payment for this usage session came of it: do not leave it waiting.
        session = PaymentSession.objects.filter(idempotency_key=idempotency_key).first()
        if session is None or session.params.get("usage_session") != usage.pk:
            usage.status = UsageStatus.CANCELLED
            usage.ended_at = timezone.now()
            usage.save(update_fields=["status", "ended_at"])
            _event(usage, "cancelled", reason="the payment could not be created")
        raise
    return session


def machine_payment_cancel(*, customer, machine_code: str, reference: str) -> UsageSession:
    """The customer gives up their PIX purchase of machine time before paying it: the
    payment is cancelled (`payment_cancel`, audited with the customer as actor) and the
    usage session with it, so the machine is free at once. Repeating it changes nothing.

    Only the customer's own waiting PIX for this machine: MachineError otherwise, or when
    the payment was already paid or closed. A PIX paid after all, once cancelled, is a late
    payment: kept, flagged for refund and alerted.
    """
    from payments.models import AuditSource
    from payments.services import payment_cancel
    from payments.services.confirmation import ConfirmOutcome, Evidence

    payment = (
        PaymentSession.objects.filter(
            reference=str(reference or "")[:64],
            user=customer,
            purpose="machine_session",
        )
        .exclude(provider=Provider.WALLET)
        .first()
    )
    usage = None
    if payment is not None:
        usage = (
            UsageSession.objects.select_related("machine")
            .filter(
                pk=payment.params.get("usage_session"),
                customer=customer,
                machine__code=machine_code,
            )
            .first()
        )
    if usage is None:
        raise MachineError(
            _("There is no payment of yours to cancel for this machine."), code="no_payment"
        )
    with transaction.atomic():
        result = payment_cancel(
            reference=payment.reference,
            evidence=Evidence(
                source=AuditSource.CUSTOMER, actor=customer, reason="cancelled by the customer"
            ),
        )
        # Payment session, machine, usage session: the order every fulfilment locks in.
        Machine.objects.select_for_update().get(pk=usage.machine_id)
        usage = UsageSession.objects.select_for_update().select_related("machine").get(pk=usage.pk)
        cancelled = result.outcome != ConfirmOutcome.IGNORED
        if cancelled and usage.status == UsageStatus.AWAITING_PAYMENT:
            usage.status = UsageStatus.CANCELLED
            usage.ended_at = timezone.now()
            usage.save(update_fields=["status", "ended_at"])
            _event(
                usage,
                "cancelled",
                source="customer",
                actor=customer,
                reason="the customer cancelled the payment",
                reference=payment.reference,
            )
    if not cancelled:
        # Paid or closed meanwhile; the refused attempt stays in the payment's trail.
        raise MachineError(
            _("This payment can no longer be cancelled: it was already paid or closed."),
            code="not_cancellable",
        )
    return usage
