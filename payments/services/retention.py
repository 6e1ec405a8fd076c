"""How long the webhook log keeps deliveries.

Deliveries are evidence (the raw request behind a payment change) and are kept for
settings.WEBHOOK_RETENTION_DAYS. Two kinds stay whatever their age: failed deliveries,
which are still being retried, and dead ones nobody has dealt with yet; staff mark a dead
delivery resolved once they have (replayed it by hand, or decided it needs nothing).
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from payments.models import DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)


def delivery_resolve(*, delivery_id: int, user=None, notes: str = "") -> bool:
    """Mark a dead delivery as dealt with, naming who did it and what they did, so
    retention may delete it in time.

    False when the delivery is not dead or already resolved.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .filter(pk=delivery_id, status=DeliveryStatus.DEAD, resolved_at__isnull=True)
            .first()
        )
        if delivery is None:
            return False
        delivery.resolved_at = timezone.now()
        delivery.resolved_by = user if getattr(user, "pk", None) else None
        delivery.notes = notes.strip()
        delivery.save(update_fields=["resolved_at", "resolved_by", "notes"])
    logger.info("webhook delivery %s resolved by %s", delivery_id, user or "system")
    return True


def deliveries_prune(
    *, older_than: timedelta, batch_size: int = 1000, dry_run: bool = False
) -> int:
    """Delete deliveries received more than `older_than` ago, in batches, except failed
    ones and unresolved dead ones. Audit rows that named a deleted delivery keep their
    other evidence (their link becomes empty). Returns how many went, or with `dry_run`
    how many would go.
    """
    prunable = (
        WebhookDelivery.objects.filter(received_at__lt=timezone.now() - older_than)
        .exclude(status=DeliveryStatus.FAILED)
        .exclude(status=DeliveryStatus.DEAD, resolved_at__isnull=True)
    )
    if dry_run:
        return prunable.count()
    deleted = 0
    while True:
        ids = list(prunable.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            # Only the ids are loaded: raw bodies can be large.
            # Re-applying the filter spares a delivery replayed into "failed" meanwhile.
            _total, by_model = prunable.filter(pk__in=ids).only("pk").delete()
        deleted += by_model.get(WebhookDelivery._meta.label, 0)
