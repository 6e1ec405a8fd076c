"""Confirma's own retries of failed webhook deliveries.

A failed delivery carries the time of its next attempt (`next_attempt_at`, set with
exponential back-off by the webhook service). Two things act on it: the retry task queued
for that time, and the periodic `retry_webhooks` command that catches whatever the task
missed (worker down, queue lost). Both first *claim* the delivery: under a row lock taken
with SKIP LOCKED they re-check that it is still failed and due, and move its next attempt
a lease into the future before processing. Whoever comes second finds it locked or no
longer due and leaves it alone, so one delivery is never processed twice at once, and no
lock is held while a provider is called. A claimer that dies mid-way only delays the
delivery until the lease runs out.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from payments.models import DeliveryStatus, WebhookDelivery
from payments.services.webhooks import delivery_replay

logger = logging.getLogger(__name__)

# Longer than any processing attempt can take (provider calls time out well before).
CLAIM_LEASE = timedelta(minutes=5)

# After a retry, these statuses mean the delivery needs nobody any more.
SETTLED = (DeliveryStatus.PROCESSED, DeliveryStatus.DUPLICATE, DeliveryStatus.IGNORED)


def _claim(candidates, *, due_at: datetime) -> int | None:
    """Claim the first failed delivery among `candidates` due by `due_at`; its id or None."""
    with transaction.atomic():
        pk = (
            candidates.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.FAILED, next_attempt_at__lte=due_at)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is not None:
            WebhookDelivery.objects.filter(pk=pk).update(
                next_attempt_at=timezone.now() + CLAIM_LEASE
            )
        return pk


def delivery_retry(*, delivery_id: int) -> str:
    """Retry one failed delivery if it is still failed, due, and nobody else is at it.

    Returns the HTTP status the retry answered with (as text), or "skipped".
    """
    if _claim(WebhookDelivery.objects.filter(pk=delivery_id), due_at=timezone.now()) is None:
        return "skipped"
    return str(delivery_replay(delivery_id=delivery_id).status)


@dataclass
class RetryReport:
    """What one pass over the due deliveries did, by resulting delivery status."""

    outcomes: Counter = field(default_factory=Counter)

    @property
    def retried(self) -> int:
        return sum(self.outcomes.values())

    @property
    def succeeded(self) -> int:
        return sum(self.outcomes[status] for status in SETTLED)

    @property
    def all_succeeded(self) -> bool:
        return self.succeeded == self.retried

    def as_dict(self) -> dict:
        return {
            "retried": self.retried,
            "succeeded": self.succeeded,
            "failed": self.outcomes[DeliveryStatus.FAILED],
            "dead": self.outcomes[DeliveryStatus.DEAD],
            "rejected": self.outcomes[DeliveryStatus.REJECTED],
        }


def deliveries_retry_due(*, limit: int = 500) -> RetryReport:
    """Retry, one by one, up to `limit` failed deliveries due now, oldest due first.

    Each is retried at most once per call: a retry that fails again is due only after its
    next back-off. A delivery out of attempts becomes dead and raises one alert (see the
    webhook service). Raises DatabaseError when the database cannot be used; deliveries
    retried before that keep their results.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    started = timezone.now()
    report = RetryReport()
    candidates = WebhookDelivery.objects.all()
    for _ in range(limit):
        pk = _claim(candidates, due_at=started)
        if pk is None:
            break
        try:
            delivery_replay(delivery_id=pk)
        except DatabaseError:
            raise
        except Exception:
            # The claim's lease brings it back later; the others still get their turn.
            logger.exception("retry of webhook delivery %s crashed", pk)
        status = (
            WebhookDelivery.objects.filter(pk=pk).values_list("status", flat=True).first()
            or DeliveryStatus.FAILED
        )
        report.outcomes[DeliveryStatus(status)] += 1
    if report.retried:
        logger.info("webhook retries: %s", report.as_dict())
    return report
