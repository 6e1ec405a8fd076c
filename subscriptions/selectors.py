"""Reads for the machine pages."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.text import text_storable
from payments.models import OPEN_STATUSES, PaymentSession, PaymentStatus, Provider
from payments.registry import purpose_get
from subscriptions.models import (
    Machine,
    Plan,
    Subscription,
    SubscriptionEvent,
    UsageSession,
    UsageStatus,
)


@dataclass
class MachineState:
    """What the activation page shows: choose, paying, activated, busy, reserved,
    expired, failed, review.

    While the customer is paying (`paying`), `held_until` is when their hold on the machine
    ends, `holding` whether it still holds, and `taken` whether someone else has the machine
    in use (possible only after the hold ended)."""

    state: str
    machine: Machine
    usage: UsageSession | None = None
    payment: PaymentSession | None = None
    held_until: datetime | None = None
    holding: bool = False
    taken: bool = False


def _reservation_holds(usage: UsageSession) -> bool:
    """A reservation holds while its payment is being created or can still be paid; a
    failed or cancelled payment releases it (its end is `reserved_until`)."""
    statuses = set(
        PaymentSession.objects.filter(
            purpose="machine_session", params__usage_session=usage.pk
        ).values_list("status", flat=True)
    )
    return not statuses or bool(statuses & set(OPEN_STATUSES))


def machine_holder(
    *, machine_id: int, except_customer_id: int | None = None, now=None
) -> UsageSession | None:
    """The usage session that holds a machine now: the active one, else a PIX purchase of
    another customer still inside its short hold (`reserved_until`, set from
    MACHINE_RESERVATION_MINUTES) whose payment can still be paid.

    A customer's own hold does not hold the machine against them (a customer holds at most
    one machine: see `customer_machine_payment_open`). Decides who may take the machine
    only when the caller holds the machine's row lock.
    """
    now = now or timezone.now()
    active = UsageSession.objects.filter(machine_id=machine_id, status=UsageStatus.ACTIVE)
    holder = active.first()
    if holder is not None:
        return holder
    reservations = UsageSession.objects.filter(
        machine_id=machine_id, status=UsageStatus.AWAITING_PAYMENT, reserved_until__gt=now
    ).order_by("pk")
    if except_customer_id is not None:
        reservations = reservations.exclude(customer_id=except_customer_id)
    return next((usage for usage in reservations if _reservation_holds(usage)), None)


def customer_machine_payment_open(*, customer_id: int, now=None) -> UsageSession | None:
    """The customer's PIX purchase of machine time still waiting to be paid, if any: a usage
    session awaiting payment whose PIX is open and not past its expiry, or whose PIX is
    still being created (within its hold). A customer has at most one; decides only when
    the caller holds the customer's row lock."""
    now = now or timezone.now()
    waiting = (
        UsageSession.objects.filter(customer_id=customer_id, status=UsageStatus.AWAITING_PAYMENT)
        .select_related("machine")
        .order_by("-pk")
    )
    for usage in waiting:
        payments = PaymentSession.objects.filter(
            purpose="machine_session", params__usage_session=usage.pk
        ).exclude(provider=Provider.WALLET)
        if payments.filter(status__in=OPEN_STATUSES, expires_at__gt=now).exists():
            return usage
        being_created = usage.reserved_until is not None and usage.reserved_until > now
        if being_created and not payments.exists():
            return usage
    return None


def machine_payment_of(*, usage: UsageSession) -> PaymentSession | None:
    """The latest payment opened for a usage session."""
    return (
        PaymentSession.objects.filter(purpose="machine_session", params__usage_session=usage.pk)
        .order_by("-id")
        .first()
    )


def machine_state_for(*, machine: Machine, user) -> MachineState:
    mine = UsageSession.objects.filter(machine=machine, customer=user)
    active = mine.filter(status=UsageStatus.ACTIVE).first()
    if active:
        return MachineState("active", machine, active, active.payment_session)
    latest = mine.order_by("-id").first()
    now = timezone.now()
    if latest and latest.status == UsageStatus.AWAITING_PAYMENT:
        payment = machine_payment_of(usage=latest)
        if payment is not None:
            if payment.is_open and payment.expires_at <= now:
                return MachineState("expired", machine, latest, payment)
            if payment.is_open:
                held_until = latest.reserved_until
                holder = machine_holder(machine_id=machine.pk, except_customer_id=user.pk)
                return MachineState(
                    "paying",
                    machine,
                    latest,
                    payment,
                    held_until=held_until,
                    holding=held_until is not None and held_until > now,
                    taken=holder is not None and holder.status == UsageStatus.ACTIVE,
                )
            if payment.status in (PaymentStatus.EXPIRED, PaymentStatus.CANCELLED):
                return MachineState("expired", machine, latest, payment)
            if payment.status == PaymentStatus.FAILED:
                return MachineState("failed", machine, latest, payment)
            if payment.status == PaymentStatus.COMPLETED:
                return MachineState("review", machine, latest, payment)
    holder = machine_holder(machine_id=machine.pk, except_customer_id=user.pk, now=now)
    if holder is not None and holder.status == UsageStatus.ACTIVE:
        return MachineState("busy", machine)
    if holder is not None:
        return MachineState("reserved", machine, holder, held_until=holder.reserved_until)
    return MachineState("choose", machine)


def machines_with_status() -> list[tuple[Machine, str]]:
    """Every active machine with what holds it: "active" (in use), "reserved" (someone is
    paying by PIX, inside their hold) or "" (free)."""
    now = timezone.now()
    machines = list(Machine.objects.filter(active=True).order_by("name"))
    busy = set(
        UsageSession.objects.filter(status=UsageStatus.ACTIVE).values_list("machine_id", flat=True)
    )
    waiting = set(
        UsageSession.objects.filter(
            status=UsageStatus.AWAITING_PAYMENT, reserved_until__gt=now
        ).values_list("machine_id", flat=True)
    )
    rows = []
    for machine in machines:
        if machine.pk in busy:
            rows.append((machine, "active"))
        elif machine.pk in waiting and machine_holder(machine_id=machine.pk, now=now):
            rows.append((machine, "reserved"))
        else:
            rows.append((machine, ""))
    return rows


def machine_controller_state(*, machine: Machine) -> UsageSession | None:
    return UsageSession.objects.filter(machine=machine, status=UsageStatus.ACTIVE).first()


# --- Plan subscriptions ----------------------------------------------------------------------

# Names under which providers hand the reference (or their payment id) back to the return page.
RETURN_REFERENCE_PARAMS = ("reference", "session_id", "order_id", "merchant_trans_id")
RETURN_PAYMENT_ID_PARAMS = ("payment_id", "NP_id")


def subscription_get(*, user):
    return Subscription.objects.select_related("plan").filter(user=user).first()


def subscription_history(*, user, limit: int = 50) -> list:
    """The user's subscription events, newest first; each carries `plan_name` and
    `previous_plan_name` (the plans' names, for pages: `data` keeps their codes)."""
    events = list(
        SubscriptionEvent.objects.filter(user=user)
        .select_related("actor", "payment_session")
        .order_by("-id")[:limit]
    )
    codes = {event.data.get(key) for event in events for key in ("plan", "previous_plan")}
    names = dict(Plan.objects.filter(code__in=codes - {None}).values_list("code", "name"))
    for event in events:
        for key in ("plan", "previous_plan"):
            code = event.data.get(key)
            setattr(event, f"{key}_name", names.get(code, code) if code else "")
    return events


def billing_payment_find(*, user, params) -> "PaymentSession | None":
    """The user's subscription payment named by whatever the provider appended to the
    return URL; None when nothing of the user's matches (never another user's)."""
    mine = PaymentSession.objects.filter(user=user)
    for name in RETURN_REFERENCE_PARAMS:
        value = (params.get(name) or "").strip()
        if value and len(value) <= 64 and text_storable(value):
            session = mine.filter(reference=value).first()
            if session is not None:
                return session
    for name in RETURN_PAYMENT_ID_PARAMS:
        value = (params.get(name) or "").strip()
        if value and len(value) <= 100 and text_storable(value):
            session = mine.filter(provider_payment_id=value).first()
            if session is not None:
                return session
    return None


def billing_recent_payments(*, user, limit: int = 10) -> list:
    return list(PaymentSession.objects.filter(user=user).order_by("-created_at")[:limit])


def billing_return_state(*, session) -> str:
    """What the return page says about a payment: waiting, processing, active, activating,
    review, failed."""
    if session.status == PaymentStatus.PENDING:
        return "waiting"
    if session.status == PaymentStatus.PROCESSING:
        return "processing"
    if session.status == PaymentStatus.COMPLETED:
        if session.amount_mismatch or session.late_payment or session.refund_due:
            return "review"
        if purpose_get(session.purpose).is_fulfilled(session=session):
            return "active"
        return "activating"
    if session.status == PaymentStatus.REFUNDED:
        return "refunded"
    return "failed"


def subscription_user_section(*, user, limit: int = 50) -> dict:
    """The subscription part of `monitor_payments user`."""
    subscription = Subscription.objects.select_related("plan").filter(user=user).first()
    events = SubscriptionEvent.objects.filter(user=user).order_by("-id")[:limit]
    usage = UsageSession.objects.filter(customer=user).order_by("-id")[:limit]

    def iso(value):
        return value.isoformat() if value else None

    return {
        "subscription": {
            "status": subscription.status,
            "plan": subscription.plan.code if subscription.plan else None,
            "tier": subscription.tier,
            "current_period_end": iso(subscription.current_period_end),
        }
        if subscription
        else None,
        "subscription_events": [
            {
                "type": e.type,
                "actor": e.actor_type,
                "reason": e.reason,
                "payment": e.payment_session_id and e.payment_session.reference,
                "created_at": iso(e.created_at),
            }
            for e in events.select_related("payment_session")
        ],
        "usage_sessions": [
            {"id": u.pk, "machine": u.machine.code, "status": u.status, "ends_at": iso(u.ends_at)}
            for u in usage.select_related("machine")
        ],
    }


def payment_session_by_reference(reference: str) -> PaymentSession | None:
    """The payment session with this public reference (any user's: for staff)."""
    reference = (reference or "").strip()
    if not reference or not text_storable(reference) or len(reference) > 64:
        return None
    return PaymentSession.objects.select_related("user").filter(reference=reference).first()


def user_find(who) -> "object | None":
    """A user by id, username or e-mail (an e-mail only when one user has it)."""
    users = get_user_model().objects.all()
    if isinstance(who, int) and not isinstance(who, bool):
        return users.filter(pk=who).first()
    who = str(who or "").strip()
    if not who or not text_storable(who) or len(who) > 254:
        return None
    user = users.filter(pk=int(who)).first() if who.isdigit() and len(who) < 19 else None
    if user is None:
        user = users.filter(username=who).first()
    if user is None:
        matches = list(users.filter(email__iexact=who)[:2])
        user = matches[0] if len(matches) == 1 else None
    return user


def machine_active_get(*, code: str) -> Machine | None:
    return Machine.objects.filter(code=code, active=True).first()


def machine_options(*, machine: Machine) -> list:
    """The time options a customer may buy on this machine."""
    return list(machine.options.all())


def plan_by_code(code: str) -> Plan | None:
    """The plan with this code, or None (also for a code no text column can hold)."""
    return Plan.objects.filter(code=code).first() if text_storable(code) else None
