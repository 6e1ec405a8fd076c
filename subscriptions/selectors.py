"""Reads for the machine pages."""

from dataclasses import dataclass

from django.utils import timezone

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
