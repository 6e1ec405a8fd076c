"""Hourly series of the last 24 hours for the operations and integration charts.

Every series has one value per hour of BUSINESS_TIME_ZONE, oldest first: the 23 whole
hours before the current one, then the current hour so far. Each series is read with one
grouped query (the database buckets by hour with `TruncHour` in the business zone), so the
pages' statement count does not grow with the data."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.db.models import Count, DateTimeField, Min, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from core.formatting import business_zone
from payments.models import PaymentSession, WebhookDelivery, WebhookRefusal
from payments.selectors import PAID, percentile

HOURS = 24
# How far before the first hour the backlog looks for deliveries that finished in the day.
BACKLOG_LOOKBACK = timedelta(days=3)

# The webhook outcomes a chart tells apart, in stacking order. Failed and dead go together:
# both are deliveries that did not work (dead ones ran out of retries).
WEBHOOK_OUTCOMES = ("processed", "duplicate", "ignored", "rejected", "failed", "waiting", "refused")
_STATUS_OUTCOME = {
    "processed": "processed",
    "duplicate": "duplicate",
    "ignored": "ignored",
    "rejected": "rejected",
    "failed": "failed",
    "dead": "failed",
    "received": "waiting",
}


@dataclass(frozen=True)
class Hours:
    """The 24 hour buckets: their starts (aware, business zone) and the moment read."""

    now: datetime
    starts: tuple[datetime, ...]

    @property
    def since(self) -> datetime:
        return self.starts[0]

    def index(self, moment: datetime | None) -> int | None:
        """Which bucket a truncated hour from the database falls in (None: outside)."""
        if moment is None:
            return None
        return self._positions.get(moment.astimezone(UTC))

    @cached_property
    def _positions(self) -> dict[datetime, int]:
        return {start.astimezone(UTC): i for i, start in enumerate(self.starts)}


def last_hours(*, now: datetime | None = None) -> Hours:
    """The current business hour and the 23 before it (counted in UTC, so a daylight-saving
    change still gives 24 real hours)."""
    now = now or timezone.now()
    zone = business_zone()
    current = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    current_utc = current.astimezone(UTC)
    starts = tuple(
        (current_utc - timedelta(hours=HOURS - 1 - i)).astimezone(zone) for i in range(HOURS)
    )
    return Hours(now=now, starts=starts)


def _hour(field_name: str) -> TruncHour:
    return TruncHour(field_name, tzinfo=business_zone(), output_field=DateTimeField())


@dataclass
class Series:
    """One chart's numbers: `values[name][i]` is series `name` in hour `i` (None: no value)."""

    hours: Hours
    values: dict[str, list] = field(default_factory=dict)
    extra: dict[str, list] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        every = [*self.values.values(), *self.extra.values()]
        return not any(value for values in every for value in values)


def webhooks_per_hour(*, hours: Hours) -> Series:
    """Webhook deliveries per hour received, by outcome (failed and dead together; waiting:
    not processed yet), plus requests refused at the door (WebhookRefusal counts, by the
    hour they fell in). One query for the deliveries, one for the refusals."""
    series = Series(hours, {name: [0] * HOURS for name in WEBHOOK_OUTCOMES})
    rows = (
        WebhookDelivery.objects.filter(received_at__gte=hours.since, received_at__lte=hours.now)
        .annotate(hour=_hour("received_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .values_list("hour", "status", "n")
    )
    for hour, status, count in rows:
        i = hours.index(hour)
        if i is not None and status in _STATUS_OUTCOME:
            series.values[_STATUS_OUTCOME[status]][i] += count
    refused = (
        WebhookRefusal.objects.filter(last_at__gte=hours.since, window_start__lte=hours.now)
        .annotate(hour=_hour("window_start"))
        .values("hour")
        .annotate(n=Sum("count"))
        .values_list("hour", "n")
    )
    for hour, count in refused:
        # A refusal row's window may start just before the first bucket.
        i = hours.index(hour)
        series.values["refused"][0 if i is None else i] += count or 0
    return series


def conversion_per_hour(*, hours: Hours) -> Series:
    """Payment sessions created per hour, how many of them were paid, and the conversion
    (paid / created, in %, one decimal; None for an hour without sessions)."""
    created, paid = [0] * HOURS, [0] * HOURS
    rows = (
        PaymentSession.objects.filter(created_at__gte=hours.since, created_at__lte=hours.now)
        .annotate(hour=_hour("created_at"))
        .values("hour")
        .annotate(created=Count("id"), paid=Count("id", filter=Q(status__in=PAID)))
        .values_list("hour", "created", "paid")
    )
    for hour, n_created, n_paid in rows:
        i = hours.index(hour)
        if i is not None:
            created[i], paid[i] = n_created, n_paid
    percent = [round(100.0 * p / c, 1) if c else None for p, c in zip(paid, created, strict=True)]
    return Series(hours, {"conversion": percent}, {"created": created, "paid": paid})


def fulfil_p95_per_hour(*, hours: Hours) -> Series:
    """Paid → delivered p95 in seconds (payment completed_at → fulfilled_at), per hour the
    payment completed in; None for an hour without a delivered payment. One query (the
    percentile is taken here: SQLite has no percentile aggregate)."""
    durations: list[list[float]] = [[] for _ in range(HOURS)]
    rows = (
        PaymentSession.objects.filter(
            completed_at__gte=hours.since, completed_at__lte=hours.now, fulfilled_at__isnull=False
        )
        .annotate(hour=_hour("completed_at"))
        .values_list("hour", "completed_at", "fulfilled_at")
    )
    for hour, completed_at, fulfilled_at in rows:
        i = hours.index(hour)
        if i is not None:
            durations[i].append(max(0.0, (fulfilled_at - completed_at).total_seconds()))
    return Series(
        hours,
        {"p95": [percentile(values, 0.95) for values in durations]},
        {"count": [len(values) for values in durations]},
    )


def backlog_per_hour(*, hours: Hours) -> Series:
    """Webhook deliveries waiting at the end of each hour (now, for the current hour), and
    how long the oldest of them had waited then (seconds).

    From stored timestamps only: a delivery waits from `received_at` until `processed_at`
    of its final outcome; one still received or failed (to be retried) waits still. A
    failed delivery between two attempts counts as waiting all along (its earlier attempts'
    times are not kept); one received more than BACKLOG_LOOKBACK before the first hour and
    finished since is left out. One query: a count and a minimum per hour end."""
    ends = [min(start + timedelta(hours=1), hours.now) for start in hours.starts]
    still = Q(status__in=["received", "failed"])
    aggregates = {}
    for i, end in enumerate(ends):
        waiting = Q(received_at__lte=end) & (still | Q(processed_at__gt=end))
        aggregates[f"n{i}"] = Count("id", filter=waiting)
        aggregates[f"o{i}"] = Min("received_at", filter=waiting)
    # Finished deliveries are looked for among those received in the last few days (the
    # received_at index bounds the scan); one that waited longer is not drawn.
    finished_lately = Q(received_at__gte=hours.since - BACKLOG_LOOKBACK) & Q(
        processed_at__gt=hours.since
    )
    row = (
        WebhookDelivery.objects.filter(received_at__lte=hours.now)
        .filter(still | finished_lately)
        .aggregate(**aggregates)
    )
    waiting = [row[f"n{i}"] or 0 for i in range(HOURS)]
    oldest = [
        round((end - row[f"o{i}"]).total_seconds()) if row[f"o{i}"] else None
        for i, end in enumerate(ends)
    ]
    return Series(hours, {"waiting": waiting}, {"oldest_seconds": oldest})


def last_day_series(*, now: datetime | None = None) -> dict[str, Series]:
    """The four charts' series (five queries)."""
    hours = last_hours(now=now)
    return {
        "webhooks": webhooks_per_hour(hours=hours),
        "conversion": conversion_per_hour(hours=hours),
        "fulfil_p95": fulfil_p95_per_hour(hours=hours),
        "backlog": backlog_per_hour(hours=hours),
    }
