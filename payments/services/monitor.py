"""Paid but not delivered: find every gap between completed payments and what they
bought, for every purpose, and repair what can be repaired through the payments core.

A gap is one of:
- `unfulfilled`: the payment completed, but what it paid for does not exist (no ticket,
  subscription not activated or extended, usage session not started, order not paid,
  top-up not credited) — the purpose's own `fulfilled_q()` decides, in one query;
- `amount_mismatch`, `late_payment`, `refund_due`: completed payments held for a staff
  decision (the reconciler never decides those; they stay listed until staff do);
- `partially_paid`: part of the price arrived and is held until staff accept it or
  record its refund.

Repair re-runs fulfilment with `payment_fulfil` (locked, exactly once, audited with the
source "reconciler").
"""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from notifications.audiences import audience_user
from notifications.models import Event
from payments.errors import PaymentError
from payments.models import (
    PAID_STATUSES,
    AuditSource,
    PartialStatus,
    PaymentSession,
    PaymentStatus,
)
from payments.registry import purposes_all
from payments.services.confirmation import Evidence, payment_fulfil

logger = logging.getLogger(__name__)

HELD = Q(amount_mismatch=True) | Q(late_payment=True) | Q(refund_due=True)
REPAIRABLE = "unfulfilled"


@dataclass(frozen=True)
class Gap:
    kind: str
    reference: str
    purpose: str
    provider: str
    user_id: int | None
    amount: str
    currency: str
    paid_at: datetime | None
    paid_seconds_ago: int | None
    reason: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.reference)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["paid_at"] = self.paid_at.isoformat() if self.paid_at else None
        return data


def _kind(session: PaymentSession) -> str:
    if session.status not in PAID_STATUSES:
        return "partially_paid"
    if session.amount_mismatch:
        return "amount_mismatch"
    if session.late_payment:
        return "late_payment"
    if session.refund_due:
        return "refund_due"
    return REPAIRABLE


def _gap(session: PaymentSession, now) -> Gap:
    return Gap(
        kind=_kind(session),
        reference=session.reference,
        purpose=session.purpose,
        provider=session.provider,
        user_id=session.user_id,
        amount=str(session.paid_amount if session.paid_amount is not None else session.amount),
        currency=session.paid_currency or session.currency,
        paid_at=session.completed_at,
        paid_seconds_ago=(
            int((now - session.completed_at).total_seconds()) if session.completed_at else None
        ),
        reason=session.fulfilment_error or "",
    )


def _gap_querysets():
    """One queryset per purpose of completed sessions missing their fulfilment, and one
    of the sessions held for staff."""
    completed = PaymentSession.objects.filter(status=PaymentStatus.COMPLETED)
    for name, purpose in sorted(purposes_all().items()):
        yield completed.filter(purpose=name).exclude(HELD).exclude(purpose.fulfilled_q())
    yield completed.filter(HELD)
    yield PaymentSession.objects.filter(partial_payment__status=PartialStatus.HELD).exclude(
        status__in=PAID_STATUSES
    )


FIELDS = (
    "reference",
    "status",
    "purpose",
    "provider",
    "user_id",
    "amount",
    "paid_amount",
    "currency",
    "paid_currency",
    "completed_at",
    "fulfilment_error",
    "amount_mismatch",
    "late_payment",
    "refund_due",
)


def gaps_find(*, limit: int = 1000) -> tuple[list[Gap], int]:
    """The gaps (oldest payment first within each purpose, at most `limit` listed) and
    how many there are in all."""
    now = timezone.now()
    gaps: list[Gap] = []
    total = 0
    for queryset in _gap_querysets():
        room = max(0, limit - len(gaps))
        rows = list(queryset.order_by("completed_at", "pk").only(*FIELDS)[: room + 1])
        if len(rows) <= room:
            total += len(rows)
        else:
            total += queryset.count()
        gaps.extend(_gap(s, now) for s in rows[:room])
    return gaps, total


def gap_get(*, reference: str) -> Gap | None:
    """The gap of one payment, or None when it is not completed or delivered its thing."""
    session = PaymentSession.objects.filter(
        reference=reference, status=PaymentStatus.COMPLETED
    ).first()
    purpose = purposes_all().get(session.purpose) if session else None
    if session is None or purpose is None:
        return None
    held = session.amount_mismatch or session.late_payment or session.refund_due
    if not held and purpose.is_fulfilled(session=session):
        return None
    return _gap(session, timezone.now())


@dataclass
class RepairReport:
    repaired: list[str]
    failed: dict[str, str]


def gaps_repair(gaps: list[Gap]) -> RepairReport:
    """Re-run fulfilment for each repairable gap through the payments core; held payments
    are left for staff. A repaired session is fulfilled exactly once even if another
    repair or a late webhook runs at the same time (the core locks and re-checks)."""
    report = RepairReport(repaired=[], failed={})
    evidence = Evidence(source=AuditSource.RECONCILER, reason="monitor_payments --repair")
    for gap in gaps:
        if gap.kind != REPAIRABLE:
            continue
        try:
            result = payment_fulfil(reference=gap.reference, evidence=evidence)
        except PaymentError as exc:
            report.failed[gap.reference] = exc.message
            continue
        except Exception as exc:  # one bad handler must not stop the other repairs
            logger.exception("repair of %s crashed", gap.reference)
            report.failed[gap.reference] = f"{exc.__class__.__name__}: {exc}"[:300]
            continue
        session = result.session
        if result.fulfilled or (session.fulfilled_at and result.outcome == "already_processed"):
            report.repaired.append(gap.reference)
        else:
            report.failed[gap.reference] = session.fulfilment_error or "fulfilment failed"
    return report


def user_overview(*, user, limit: int = 50) -> dict:
    """One user's payments, sessions, subscription and events, newest first (the
    `monitor_payments user` report)."""
    payments = PaymentSession.objects.filter(user=user).order_by("-created_at")[:limit]
    purposes = purposes_all()
    rows = []
    for session in payments:
        purpose = purposes.get(session.purpose)
        rows.append(
            {
                "reference": session.reference,
                "purpose": session.purpose,
                "provider": session.provider,
                "status": session.status,
                "amount": str(session.amount),
                "currency": session.currency,
                "created_at": session.created_at.isoformat(),
                "completed_at": session.completed_at.isoformat() if session.completed_at else None,
                "fulfilled": bool(purpose and purpose.is_fulfilled(session=session))
                if session.status == PaymentStatus.COMPLETED
                else None,
                "held": session.amount_mismatch or session.late_payment or session.refund_due,
                "fulfilment_error": session.fulfilment_error,
            }
        )
    events = Event.objects.filter(audience=audience_user(user.pk)).order_by("-id")[:limit]
    overview = {
        "user": {"id": user.pk, "username": user.get_username(), "email": user.email},
        "payments": rows,
        "events": [
            {"id": e.id, "type": e.type, "created_at": e.created_at.isoformat()} for e in events
        ],
    }
    for section in _user_sections:
        overview.update(section(user=user, limit=limit))
    return overview


_user_sections = []


def user_section_register(section) -> None:
    """Apps add what they know about a user to the report (subscription, usage…)."""
    _user_sections.append(section)
