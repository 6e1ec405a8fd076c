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
  machine being paid for (the same purchase sent twice, one idempotency key, is not a
  second one), and the customer can cancel that payment from the machine's
  page (`machine_payment_cancel`), which frees the machine at once — unless the payment
  may already be paid: one being processed is not cancelled, and the provider is asked
  first (paid there, it is confirmed and the machine starts). A PIX paid after the
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
from django.utils.translation import gettext_lazy

from notifications.audiences import audience_machine, audience_user
from notifications.services import event_publish
from payments.errors import FulfilmentRefused, IdempotencyConflict, InvalidParams
from payments.models import OPEN_STATUSES, AuditSource, PaymentSession, PaymentStatus, Provider
from payments.providers import PaymentState, own_money, provider_get
from payments.registry import Purpose, Quote
from payments.services import (
    payment_cancel,
    payment_confirm,
    payment_mark_processing,
    payment_session_create,
)
from payments.services.confirmation import ConfirmOutcome, Evidence
from payments.services.transactions import purchase_transaction
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
    usage_status_move,
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


def _event(usage, type_, *, source=AuditSource.SYSTEM, actor=None, reason="", **data) -> None:
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
        audience=audience_machine(usage.machine_id),
        type="machine.activate",
        payload={"usage_session": usage.pk, "ends_at": usage.ends_at},
    )


def _push_off(usage: UsageSession, why: str) -> None:
    event_publish(
        audience=audience_machine(usage.machine_id),
        type="machine.deactivate",
        payload={"usage_session": usage.pk, "reason": why},
    )
    event_publish(
        audience=audience_user(usage.customer_id),
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


def _refuse_if_paying(customer, *, idempotency_key: str = "") -> UsageSession | None:
    """PixPaymentWaiting when the customer already has a PIX purchase of machine time
    waiting — unless it is this very purchase, asked for again with its idempotency key
    (a double click whose first request is still creating the payment): that usage session
    is returned, to be paid by the first request's payment. Locks the customer's row
    (before any machine row) so that two purchases of one customer are checked one after
    the other; caller is inside an atomic block."""
    get_user_model().objects.select_for_update().filter(pk=customer.pk).first()
    waiting = customer_machine_payment_open(customer_id=customer.pk)
    if waiting is None:
        return None
    if idempotency_key:
        started_with_key = (
            waiting.events.filter(type="created", data__idempotency_key=idempotency_key).exists()
            or PaymentSession.objects.filter(
                idempotency_key=idempotency_key, params__usage_session=waiting.pk
            ).exists()
        )
        if started_with_key:
            return waiting
    raise PixPaymentWaiting(machine=waiting.machine)


def usage_session_start(
    *,
    customer,
    machine_code: str,
    minutes: int,
    reserve: bool = False,
    idempotency_key: str = "",
) -> UsageSession:
    """A new usage session awaiting payment; MachineBusy when the machine is in use,
    MachineReserved when another customer is paying for it.

    Locks the machine's row while it checks and takes it: the caller's transaction keeps
    the lock (a credit purchase holds it until the payment is confirmed). With `reserve`
    (PIX) the usage session holds the machine for MACHINE_RESERVATION_MINUTES, and the
    customer's row is locked first: PixPaymentWaiting when they already have a PIX
    purchase of machine time waiting to be paid, unless that purchase was started with
    this `idempotency_key` (kept on its "created" event): then it is returned as it is.
    """
    with transaction.atomic():
        if reserve:
            same_purchase = _refuse_if_paying(customer, idempotency_key=idempotency_key)
            if same_purchase is not None:
                return same_purchase
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
        # At least one minute (checked when the settings load): the hold is also what marks
        # a PIX purchase as "being created" until its payment exists.
        hold = timedelta(minutes=settings.MACHINE_RESERVATION_MINUTES)
        usage = UsageSession.objects.create(
            customer=customer,
            machine=machine,
            minutes=minutes,
            amount=option.price,
            currency=machine.currency,
            created_at=now,
            reserved_until=now + hold if reserve else None,
        )
        key = {"idempotency_key": idempotency_key} if reserve and idempotency_key else {}
        _event(usage, "created", source=AuditSource.CUSTOMER, actor=customer, **key)
        return usage


class MachineSessionPurpose(Purpose):
    name = "machine_session"
    label = gettext_lazy("Machine time")
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
        usage_status_move(usage, UsageStatus.ACTIVE)
        usage.started_at = now
        usage.ends_at = now + timedelta(minutes=usage.minutes)
        usage.payment_session = session
        usage.save(update_fields=["status", "started_at", "ends_at", "payment_session"])
        _event(
            usage,
            "activated",
            source=AuditSource.WALLET if own_money(session.provider) else AuditSource.PROVIDER,
            reference=session.reference,
            provider=session.provider,
        )
        event_publish(
            audience=audience_user(usage.customer_id),
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
            usage_status_move(usage, UsageStatus.COMPLETED)
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
            usage_status_move(locked, UsageStatus.EXPIRED)
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
        usage_status_move(usage, UsageStatus.COMPLETED)
        usage.ended_at = timezone.now()
        usage.save(update_fields=["status", "ended_at"])
        _event(usage, "ended_by_staff", source=AuditSource.STAFF, actor=actor, reason=reason)
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
            usage,
            "extended_by_staff",
            source=AuditSource.STAFF,
            actor=actor,
            reason=reason,
            minutes=minutes,
        )
        _push_on(usage)
        event_publish(
            audience=audience_user(usage.customer_id),
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
    already has a PIX purchase of machine time waiting — nothing is created. The same call
    sent twice at once (one key) is one purchase: both get the first payment session.
    """
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
        customer=customer,
        machine_code=machine_code,
        minutes=minutes,
        reserve=True,
        idempotency_key=idempotency_key,
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
            usage_status_move(usage, UsageStatus.CANCELLED)
            usage.ended_at = timezone.now()
            usage.save(update_fields=["status", "ended_at"])
            _event(usage, "cancelled", reason="the payment could not be created")
        raise
    return session


def _refuse_if_paid_at_provider(payment: PaymentSession, usage: UsageSession) -> None:
    """Ask the provider whether the customer already paid this PIX (its notification may
    still be on its way), before it is cancelled. Call it with no lock held.

    Paid: the payment is confirmed through the one confirmation path, as polling does, and
    MachineError (code "payment_arrived") says so. Being processed: recorded, and
    MachineError ("payment_processing"). The provider cannot be asked or its answer cannot
    be used: MachineError ("provider_unavailable") — never a cancel in the dark. Returns
    when the payment can still be cancelled (not paid, or unknown to the provider)."""
    adapter = provider_get(payment.provider)
    if not payment.provider_payment_id or adapter is None or not adapter.can_fetch:
        return
    try:
        notification = adapter.fetch(payment.provider_payment_id)
    except Exception as exc:  # unreachable, refused, or an answer that cannot be read
        logger.warning(
            "payment %s: the provider could not be asked before a cancel (%s)",
            payment.reference,
            exc.__class__.__name__,
            extra={"reference": payment.reference},
        )
        raise _provider_unreachable() from exc
    if notification is None:
        return  # not a payment the provider knows: nothing can be paid on it
    if notification.reference and notification.reference != payment.reference:
        logger.error(
            "payment %s: its provider payment names another reference",
            payment.reference,
            extra={"reference": payment.reference},
        )
        raise _provider_unreachable()
    evidence = Evidence(
        source=AuditSource.POLL,
        reason="asked the provider before the customer's cancel",
        data={"provider_status": notification.provider_status},
    )
    if notification.state == PaymentState.APPROVED:
        payment_confirm(
            reference=payment.reference,
            evidence=evidence,
            amount=notification.amount,
            currency=notification.currency,
            provider_payment_id=notification.provider_payment_id,
        )
        if UsageSession.objects.filter(pk=usage.pk, payment_session=payment).exists():
            raise MachineError(
                _("Your payment has arrived; the machine is starting."), code="payment_arrived"
            )
        raise MachineError(
            _(
                "Your payment has arrived, so it can no longer be cancelled; our staff will "
                "check it."
            ),
            code="payment_arrived_review",
        )
    if notification.state == PaymentState.PROCESSING:
        payment_mark_processing(
            reference=payment.reference,
            evidence=evidence,
            provider_payment_id=notification.provider_payment_id,
        )
        raise _payment_processing()


def _provider_unreachable() -> MachineError:
    return MachineError(
        _(
            "We could not check with the bank whether this payment was already made, so it "
            "was not cancelled. Try again in a moment."
        ),
        code="provider_unavailable",
    )


def _payment_processing() -> MachineError:
    return MachineError(
        _(
            "Your payment is already being processed, so it can no longer be cancelled. This "
            "page shows the result as soon as it is confirmed."
        ),
        code="payment_processing",
    )


def machine_payment_cancel(*, customer, machine_code: str, reference: str) -> UsageSession:
    """The customer gives up their PIX purchase of machine time before paying it: the
    payment is cancelled (`payment_cancel`, audited with the customer as actor) and the
    usage session with it, so the machine is free at once. Repeating it changes nothing.

    Only the customer's own waiting PIX for this machine: MachineError otherwise, or when
    the payment was already paid or closed. Never a payment that may already be paid: one
    being processed is refused, and the provider is asked first (no lock held) — paid
    there, it is confirmed instead and the machine starts (MachineError "payment_arrived"
    tells the customer); the provider unreachable, nothing is cancelled (MachineError
    "provider_unavailable"). A PIX paid after all, once cancelled, is a late payment: kept,
    flagged for refund and alerted.
    """
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
    if payment.status == PaymentStatus.PROCESSING:
        raise _payment_processing()
    if payment.status == PaymentStatus.PENDING:
        _refuse_if_paid_at_provider(payment, usage)
    with transaction.atomic():
        # Payment session, machine, usage session: the order every fulfilment locks in.
        locked = PaymentSession.objects.select_for_update().get(pk=payment.pk)
        if locked.status == PaymentStatus.PROCESSING:
            raise _payment_processing()  # the provider saw it pay since we asked
        result = payment_cancel(
            reference=payment.reference,
            evidence=Evidence(
                source=AuditSource.CUSTOMER, actor=customer, reason="cancelled by the customer"
            ),
        )
        Machine.objects.select_for_update().get(pk=usage.machine_id)
        usage = UsageSession.objects.select_for_update().select_related("machine").get(pk=usage.pk)
        cancelled = result.outcome != ConfirmOutcome.IGNORED
        if cancelled and usage.status == UsageStatus.AWAITING_PAYMENT:
            usage_status_move(usage, UsageStatus.CANCELLED)
            usage.ended_at = timezone.now()
            usage.save(update_fields=["status", "ended_at"])
            _event(
                usage,
                "cancelled",
                source=AuditSource.CUSTOMER,
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
