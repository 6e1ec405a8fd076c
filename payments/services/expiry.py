"""Expiring payment sessions whose time ran out, in bulk.

A pending session past its `expires_at` can no longer be paid in the normal way: it
becomes `expired`, which also gives back the coupon it held (a coupon is held by every
open session that carries it, see `coupon_apply`). A payment that still arrives later is
recorded as a late payment by `payment_confirm`, never dropped.

Sessions the provider has already seen (`processing`) are left alone: their money may be
on its way. The work runs in batches of primary keys so that memory and transaction size
stay the same whether one session or a million are due.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from payments.models import (
    AuditSource,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    payment_transition_check,
)
from payments.services.confirmation import _publish
from payments.signals import payment_statuses_changed_send

logger = logging.getLogger(__name__)

# Customers may still be looking at a payment page for a while after it expired; only
# they need the live `payment.expired` event. Older sessions are expired silently, which
# keeps a backlog of a million sessions to a handful of queries per batch.
NOTIFY_WITHIN = timedelta(hours=1)


@dataclass(frozen=True)
class ExpiryResult:
    expired: int
    batches: int


def _expire_batch(*, after_pk: int, batch_size: int, notify_within: timedelta):
    """Expire up to `batch_size` due pending sessions with a primary key above
    `after_pk`, in one transaction. Returns (last pk seen, how many were looked at, how
    many expired), or None when nothing is left.

    Rows another transaction holds (a confirmation in progress) are skipped, not waited
    for; the UPDATE re-checks status and expiry so that nothing already changed regresses.
    """
    now = timezone.now()
    with transaction.atomic():
        # Only the few columns the batch needs, never model instances.
        locked = list(
            PaymentSession.objects.select_for_update(skip_locked=True)
            .filter(status=PaymentStatus.PENDING, expires_at__lte=now, pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", "coupon_id", "expires_at")[:batch_size]
        )
        if not locked:
            return None
        pks = [pk for pk, _coupon, _expires_at in locked]
        payment_transition_check(PaymentStatus.PENDING, PaymentStatus.EXPIRED)
        updated = PaymentSession.objects.filter(
            pk__in=pks, status=PaymentStatus.PENDING, expires_at__lte=now
        ).update(status=PaymentStatus.EXPIRED, closed_at=now)
        expired = locked
        if updated != len(locked):
            # Cannot happen while the rows are locked; if it ever does, audit only what
            # this batch really changed.
            changed = set(
                PaymentSession.objects.filter(
                    pk__in=pks, status=PaymentStatus.EXPIRED, closed_at=now
                ).values_list("pk", flat=True)
            )
            expired = [row for row in locked if row[0] in changed]
        PaymentAudit.objects.bulk_create(
            [
                PaymentAudit(
                    session_id=pk,
                    action="expired",
                    from_status=PaymentStatus.PENDING,
                    to_status=PaymentStatus.EXPIRED,
                    source=AuditSource.SYSTEM,
                    reason="expiry passed",
                    # Holds are counted from open sessions: closing this one released it.
                    data={"coupon_released": coupon_id} if coupon_id else {},
                    created_at=now,
                )
                for pk, coupon_id, _expires_at in expired
            ]
        )
        payment_statuses_changed_send(
            pks=[pk for pk, _coupon, _expires_at in expired],
            previous_status=PaymentStatus.PENDING,
            status=PaymentStatus.EXPIRED,
        )
        recent = [pk for pk, _coupon, expires_at in expired if expires_at > now - notify_within]
        if recent:
            sessions = PaymentSession.objects.filter(pk__in=recent).only(
                "pk", "reference", "purpose", "status", "amount", "currency", "user"
            )
            for session in sessions.order_by("pk"):
                _publish(session, "payment.expired")
    if expired:
        logger.info(
            "expired %d payment sessions (ids %d..%d, %d announced)",
            len(expired),
            pks[0],
            pks[-1],
            len(recent),
        )
    return pks[-1], len(pks), len(expired)


def sessions_expire_due(
    *, batch_size: int = 1000, notify_within: timedelta = NOTIFY_WITHIN
) -> ExpiryResult:
    """Expire every pending session whose expiry has passed, `batch_size` at a time.

    Each batch commits on its own: an error stops the run but keeps earlier batches.
    Customers of sessions that expired within `notify_within` get a `payment.expired`
    event (the same one `payment_expire` sends). Safe to run concurrently with
    confirmations and with itself.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    after_pk, expired, batches = 0, 0, 0
    while True:
        done = _expire_batch(after_pk=after_pk, batch_size=batch_size, notify_within=notify_within)
        if done is None:
            break
        after_pk, seen, count = done
        expired += count
        batches += 1
        if seen < batch_size:
            # The due sessions ran out (any still locked by a confirmation are left to
            # it, or to the next run): no need to ask again.
            break
    return ExpiryResult(expired=expired, batches=batches)
