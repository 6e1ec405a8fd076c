"""Reads for the machine pages."""

from dataclasses import dataclass

from django.utils import timezone

from config.text import text_storable
from payments.models import PaymentSession, PaymentStatus
from subscriptions.models import Machine, UsageSession, UsageStatus


@dataclass
class MachineState:
    """What the activation page shows: choose, paying, activated, busy, expired, failed."""

    state: str
    machine: Machine
    usage: UsageSession | None = None
    payment: PaymentSession | None = None


def machine_state_for(*, machine: Machine, user) -> MachineState:
    mine = UsageSession.objects.filter(machine=machine, customer=user)
    active = mine.filter(status=UsageStatus.ACTIVE).first()
    if active:
        return MachineState("active", machine, active, active.payment_session)
    latest = mine.order_by("-id").first()
    if latest and latest.status == UsageStatus.AWAITING_PAYMENT:
        payment = (
            PaymentSession.objects.filter(
                purpose="machine_session", params__usage_session=latest.pk
            )
            .order_by("-id")
            .first()
        )
        if payment is not None:
            if payment.is_open and payment.expires_at <= timezone.now():
                return MachineState("expired", machine, latest, payment)
            if payment.is_open:
                return MachineState("paying", machine, latest, payment)
            if payment.status in (PaymentStatus.EXPIRED, PaymentStatus.CANCELLED):
                return MachineState("expired", machine, latest, payment)
            if payment.status == PaymentStatus.FAILED:
                return MachineState("failed", machine, latest, payment)
            if payment.status == PaymentStatus.COMPLETED:
                return MachineState("review", machine, latest, payment)
    if UsageSession.objects.filter(machine=machine, status=UsageStatus.ACTIVE).exists():
        return MachineState("busy", machine)
    return MachineState("choose", machine)


def machines_with_status() -> list[tuple[Machine, bool]]:
    busy = set(
        UsageSession.objects.filter(status=UsageStatus.ACTIVE).values_list("machine_id", flat=True)
    )
    return [(m, m.pk in busy) for m in Machine.objects.filter(active=True).order_by("name")]


def machine_controller_state(*, machine: Machine) -> UsageSession | None:
    return UsageSession.objects.filter(machine=machine, status=UsageStatus.ACTIVE).first()


# --- Plan subscriptions ----------------------------------------------------------------------

# Names under which providers hand the reference (or their payment id) back to the return page.
RETURN_REFERENCE_PARAMS = ("reference", "session_id", "order_id", "merchant_trans_id")
RETURN_PAYMENT_ID_PARAMS = ("payment_id", "NP_id")


def plans_for_checkout() -> list:
    from subscriptions.models import Plan
    from subscriptions.services.plans import plan_providers

    plans = list(Plan.objects.filter(active=True))
    for plan in plans:
        plan.providers = plan_providers(plan)
    return plans


def subscription_get(*, user):
    from subscriptions.models import Subscription

    return Subscription.objects.select_related("plan").filter(user=user).first()


def subscription_history(*, user, limit: int = 50) -> list:
    from subscriptions.models import SubscriptionEvent

    return list(
        SubscriptionEvent.objects.filter(user=user)
        .select_related("actor", "payment_session")
        .order_by("-id")[:limit]
    )


def billing_payment_find(*, user, params) -> "PaymentSession | None":
    """The user's subscription payment named by whatever the provider appended to the
    return URL; None when nothing of the user's matches (never another user's)."""
    from payments.models import PaymentSession

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
    from payments.models import PaymentSession

    return list(PaymentSession.objects.filter(user=user).order_by("-created_at")[:limit])


def billing_return_state(*, session) -> str:
    """What the return page says about a payment: waiting, processing, active, activating,
    review, failed."""
    from payments.models import PaymentStatus
    from payments.registry import purpose_get

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
    from subscriptions.models import Subscription, SubscriptionEvent, UsageSession

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
