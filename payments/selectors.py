"""Read-only figures about payments and webhooks, shared by the staff health page and
`/api/integration/status/`."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from payments.models import (
    PAID_STATUSES,
    DeliveryStatus,
    PartialStatus,
    PaymentSession,
    PaymentStatus,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.registry import purposes_all

PAID = (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p50 = fraction 0.5), rounded to milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 3)


def payments_health(*, since=None) -> list[dict]:
    """Per purpose and provider, for sessions created since `since` (default a day ago):
    created, completed, fulfilled (the purpose's own check), held for staff (completed but
    mismatched, late or due a refund; or not paid in full with a partial payment), conversion
    (fulfilled / completed, %) and payment → fulfilled seconds (p50, p95)."""
    since = since or timezone.now() - timedelta(days=1)
    recent = PaymentSession.objects.filter(created_at__gte=since)
    rows: dict[tuple[str, str], dict] = {}
    counts = recent.values("purpose", "provider").annotate(
        created=Count("id"),
        completed=Count("id", filter=Q(status__in=PAID)),
        held=Count(
            "id",
            filter=Q(status=PaymentStatus.COMPLETED)
            & (Q(amount_mismatch=True) | Q(late_payment=True) | Q(refund_due=True))
            # Part of the price arrived: held until staff accept or refund it.
            | (Q(partial_payment__status=PartialStatus.HELD) & ~Q(status__in=PAID_STATUSES)),
        ),
    )
    for row in counts:
        rows[(row["purpose"], row["provider"])] = {
            "purpose": row["purpose"],
            "provider": row["provider"],
            "created": row["created"],
            "completed": row["completed"],
            "held": row["held"],
            "fulfilled": 0,
        }
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for name, purpose in purposes_all().items():
        fulfilled = recent.filter(purpose=name, status__in=PAID).filter(purpose.fulfilled_q())
        for provider, count in (
            fulfilled.values("provider").annotate(n=Count("id")).values_list("provider", "n")
        ):
            if (name, provider) in rows:
                rows[(name, provider)]["fulfilled"] = count
        timed = fulfilled.filter(fulfilled_at__isnull=False, completed_at__isnull=False)
        for provider, completed_at, fulfilled_at in timed.values_list(
            "provider", "completed_at", "fulfilled_at"
        ):
            durations[(name, provider)].append((fulfilled_at - completed_at).total_seconds())
    result = []
    for key in sorted(rows):
        row = rows[key]
        values = durations.get(key, [])
        row["conversion_percent"] = (
            round(100.0 * row["fulfilled"] / row["completed"], 1) if row["completed"] else None
        )
        row["fulfil_seconds"] = {
            "count": len(values),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
        }
        result.append(row)
    return result


def webhooks_health(*, now=None) -> list[dict]:
    """Per provider: deliveries by status and signature failures in the last hour and the
    last day, and dead deliveries nobody resolved yet (whenever they arrived)."""
    now = now or timezone.now()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    providers: dict[str, dict] = {}

    def entry(provider: str) -> dict:
        return providers.setdefault(
            provider,
            {
                "provider": provider,
                "last_hour": {},
                "last_day": {},
                "signature_failures": {"last_hour": 0, "last_day": 0},
                "refused": {},
                "dead_unresolved": 0,
            },
        )

    recent = WebhookDelivery.objects.filter(received_at__gte=day)
    for provider, status, in_hour, in_day in (
        recent.values("provider", "status")
        .annotate(in_hour=Count("id", filter=Q(received_at__gte=hour)), in_day=Count("id"))
        .values_list("provider", "status", "in_hour", "in_day")
    ):
        if in_hour:
            entry(provider)["last_hour"][status] = in_hour
        entry(provider)["last_day"][status] = in_day
    # Refused requests are counted per hour they fell in (WebhookRefusal), not stored.
    refused = (
        WebhookRefusal.objects.filter(last_at__gte=day)
        .values("provider", "reason")
        .annotate(in_hour=Sum("count", filter=Q(last_at__gte=hour)), in_day=Sum("count"))
    )
    for row in refused:
        counts = entry(row["provider"])
        if row["reason"] == "invalid signature":
            counts["signature_failures"] = {
                "last_hour": row["in_hour"] or 0,
                "last_day": row["in_day"] or 0,
            }
        counts["refused"][row["reason"]] = row["in_day"] or 0
    dead = WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD, resolved_at__isnull=True)
    for provider, count in (
        dead.values("provider").annotate(n=Count("id")).values_list("provider", "n")
    ):
        entry(provider)["dead_unresolved"] = count
    return [providers[p] for p in sorted(providers)]


def payment_session_get(*, reference: str, purpose: str | None = None) -> PaymentSession | None:
    """The session with this public reference (of `purpose` when given), or None. The caller
    decides who may see it; `reference` comes from a `<reference:…>` URL."""
    sessions = PaymentSession.objects.filter(reference=reference)
    if purpose is not None:
        sessions = sessions.filter(purpose=purpose)
    return sessions.first()


def payment_sessions_recent(*, user, limit: int = 20) -> list[PaymentSession]:
    """The user's latest payment sessions, newest first."""
    return list(PaymentSession.objects.filter(user=user).order_by("-id")[:limit])


def wallet_entries_recent(*, account, limit: int = 20) -> list:
    """The wallet account's latest ledger entries, newest first, with their sessions."""
    return list(account.entries.select_related("session").order_by("-id")[:limit])
