"""The webhook workers: stored deliveries processed in batches, each exactly once.

Intake (`payments.services.intake`) stores a verified delivery with one INSERT and answers
the provider. Workers (`manage.py process_webhooks`) then:

1. claim waiting deliveries oldest first (`SELECT … FOR UPDATE SKIP LOCKED`, a batch at a
   time) and give each a lease (`next_attempt_at`, `claimed_by`): a worker that dies leaves
   its claims to be taken again when the lease ends;
2. read each into the common notification, asking the provider where its protocol needs it
   (Mercado Pago) — outside any lock;
3. apply the batch through the one confirmation path (`notifications_apply`): its sessions
   locked at once in primary-key order, the deliveries' outcomes recorded in the same
   transaction as their effects. When the batch fails, its notifications are applied one
   by one, so the one at fault is retried alone and never holds back the rest.

Outcomes: processed, duplicate (the session had it already), ignored (nothing to do, an
unknown reference), rejected (unreadable), failed (retried with back-off, then dead with
an alert). A replay is a new delivery linked to the original, whose outcome stays.
"""

import logging
import os
import socket
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl

import requests
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Case, Count, F, Min, Q, Value, When
from django.utils import timezone

from core.logging import redact
from notifications.services import alert_raise
from payments.errors import PaymentError, PaymentNotFound, ProviderUnavailable
from payments.models import AuditSource, DeliveryStatus, PaymentSession, WebhookDelivery
from payments.providers import InboundRequest, MalformedPayload, ProviderRefusal, provider_get
from payments.providers.base import DeliveryResult
from payments.services.confirmation import (
    Applied,
    ConfirmOutcome,
    Evidence,
    lock_conflict,
    notifications_apply,
)
from payments.services.unmatched import notifications_resolve, unmatched_record

logger = logging.getLogger(__name__)

# What processing changes on a delivery (the stored request is written once, at intake).
FINISH_FIELDS = [
    "status",
    "response_status",
    "error",
    "traceback",
    "processed_at",
    "session",
    "next_attempt_at",
    "claimed_by",
]
TRANSIENT = (ProviderUnavailable, OperationalError, InterfaceError, requests.RequestException)
WAITING = (DeliveryStatus.RECEIVED, DeliveryStatus.FAILED)
# After processing, these statuses mean the delivery needs nobody any more.
SETTLED = (DeliveryStatus.PROCESSED, DeliveryStatus.DUPLICATE, DeliveryStatus.IGNORED)
HTTP_STATUS = {
    DeliveryStatus.PROCESSED: 200,
    DeliveryStatus.DUPLICATE: 200,
    DeliveryStatus.IGNORED: 200,
    DeliveryStatus.REJECTED: 400,
}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def waiting_q(now, *, new_before=None) -> Q:
    """Deliveries a worker may take: new ones (received before `new_before`, when given),
    and claims or retries whose time has come."""
    new = Q(status=DeliveryStatus.RECEIVED, next_attempt_at__isnull=True)
    if new_before is not None:
        new &= Q(received_at__lte=new_before)
    return new | Q(
        status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED], next_attempt_at__lte=now
    )


def deliveries_claim(
    *, limit: int, worker: str = "", only: list[int] | None = None, safety_net: bool = False
) -> list:
    """Claim up to `limit` waiting deliveries, oldest first, each with a lease; rows other
    workers hold are skipped, never waited for. The safety net (`retry_webhooks`) leaves
    new deliveries to the workers for a lease's length: it takes due retries, claims
    whose worker died, and deliveries no worker has taken in that time."""
    now = timezone.now()
    new_before = now - lease() if safety_net else None
    with transaction.atomic():
        waiting = WebhookDelivery.objects.select_for_update(skip_locked=True).filter(
            waiting_q(now, new_before=new_before)
        )
        if only is not None:
            waiting = waiting.filter(pk__in=only)
        claimed = list(waiting.order_by("pk")[:limit])
        if claimed:
            until, holder = now + lease(), worker or worker_name()
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
                attempts=F("attempts") + 1, next_attempt_at=until, claimed_by=holder
            )
            for delivery in claimed:
                delivery.attempts += 1
                delivery.next_attempt_at, delivery.claimed_by = until, holder
    return claimed


def inbound(delivery: WebhookDelivery) -> InboundRequest:
    return InboundRequest(
        headers=dict(delivery.headers),
        query=dict(parse_qsl(delivery.query_string, keep_blank_values=True)),
        body=bytes(delivery.body),
        received_at=delivery.received_at,
        endpoint=delivery.endpoint,
    )


@dataclass
class _Item:
    delivery: WebhookDelivery
    adapter: object
    notification: object = None
    claim: tuple = ()  # (holder, lease end) as claimed: whose it is while processed

    def __post_init__(self) -> None:
        self.claim = (self.delivery.claimed_by, self.delivery.next_attempt_at)


def _set_outcome(delivery, status, *, error="", trace="", session=None, at=None) -> None:
    delivery.status = status
    delivery.response_status = HTTP_STATUS.get(status, delivery.response_status)
    delivery.error = redact(error)[:4000]
    delivery.traceback = redact(trace)[:20000]
    delivery.processed_at = at or timezone.now()
    delivery.claimed_by = ""
    if session is not None:
        delivery.session = session
    delivery.next_attempt_at = None


def _save(deliveries) -> None:
    """Write the outcomes: one UPDATE per distinct outcome (a batch has a few), each
    delivery's session set by primary key in the same statement."""
    if len(deliveries) == 1:
        deliveries[0].save(update_fields=[*FINISH_FIELDS, "attempts"])
        return
    shared = [name for name in [*FINISH_FIELDS, "attempts"] if name != "session"]
    groups: dict[tuple, list] = {}
    for delivery in deliveries:
        key = tuple(getattr(delivery, name) for name in shared)
        groups.setdefault(key, []).append(delivery)
    for key, group in groups.items():
        values = dict(zip(shared, key, strict=True))
        sessions = [(d.pk, d.session_id) for d in group if d.session_id is not None]
        if sessions:
            values["session_id"] = Case(
                *(When(pk=pk, then=Value(session)) for pk, session in sessions),
                default=F("session_id"),
                output_field=WebhookDelivery._meta.get_field("session").target_field,
            )
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in group]).update(**values)


def _fail(delivery, exc: Exception, *, synchronous: bool = False) -> None:
    """Record a failure and when to try again (never for a synchronous protocol, whose
    provider retries and was told it failed); out of attempts → dead, with one alert."""
    transient = isinstance(exc, TRANSIENT)
    _set_outcome(
        delivery,
        DeliveryStatus.FAILED,
        error=f"{exc.__class__.__name__}: {exc}",
        trace="" if transient else traceback.format_exc(),
    )
    delivery.response_status = 503 if transient else 500
    if synchronous:
        return
    if delivery.attempts >= settings.WEBHOOK_RETRY_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        alert_raise(
            code="webhook.dead",
            message="A webhook delivery failed for good.",
            context={
                "delivery": delivery.pk,
                "provider": delivery.provider,
                "error": delivery.error[:300],
            },
            # One alert per dead delivery, whatever its last error said.
            dedupe_key=f"delivery:{delivery.pk}",
        )
        return
    delay = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, delivery.attempts - 1)
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=min(delay, 6 * 3600))


def _read(item: _Item) -> DeliveryResult | None:
    """Parse (and fetch) one delivery's notification; a result when it ends here."""
    delivery = item.delivery
    try:
        notification = item.adapter.parse(inbound(delivery))
        if notification is not None and notification.needs_fetch:
            # The provider's API, outside any lock: its answer is the notification.
            notification = item.adapter.fetch(notification.provider_payment_id)
    except (MalformedPayload, ValueError, TypeError, RecursionError, UnicodeError) as exc:
        _set_outcome(delivery, DeliveryStatus.REJECTED, error=f"malformed: {exc}")
        return _result(delivery)
    except TRANSIENT as exc:
        logger.warning("webhook delivery %s: provider unavailable (%s)", delivery.pk, exc)
        _fail(delivery, exc, synchronous=item.adapter.synchronous)
        return _result(delivery, error=str(exc))
    except Exception as exc:
        logger.exception("webhook delivery %s could not be read", delivery.pk)
        _fail(delivery, exc, synchronous=item.adapter.synchronous)
        return _result(delivery)
    if notification is None:
        _set_outcome(delivery, DeliveryStatus.IGNORED, error="not a payment notification")
        return _result(delivery)
    item.notification = notification
    return None


def _result(delivery, *, item=None, outcome="", code=None, error="") -> DeliveryResult:
    return DeliveryResult(
        status=delivery.status,
        delivery_id=delivery.pk,
        outcome=outcome,
        session_pk=delivery.session_id,
        error=error or delivery.error,
        provider_code=code,
        notification=item.notification if item else None,
    )


def _checked(items: list[_Item], results: dict) -> list[_Item]:
    """Let synchronous protocols refuse before anything is applied (Click's codes)."""
    checking = [item for item in items if item.adapter.synchronous]
    if not checking:
        return items
    references = {item.notification.reference for item in checking}
    sessions = {s.reference: s for s in PaymentSession.objects.filter(reference__in=references)}
    kept = []
    for item in items:
        if item.adapter.synchronous:
            session = sessions.get(item.notification.reference)
            try:
                item.adapter.check(item.notification, session)
            except ProviderRefusal as exc:
                status = DeliveryStatus(exc.status)
                _set_outcome(
                    item.delivery, status, error=f"{item.delivery.provider} {exc.code}: {exc}"
                )
                item.delivery.response_status = 200
                if session is not None and session.provider == item.delivery.provider:
                    item.delivery.session = session
                results[item.delivery.pk] = _result(item.delivery, item=item, code=exc.code)
                continue
        kept.append(item)
    return kept


def _evidence(item: _Item) -> Evidence:
    return Evidence(
        source=AuditSource.WEBHOOK,
        delivery=item.delivery,
        data={
            "provider_status": item.notification.provider_status,
            "event_id": item.delivery.event_id,
        },
    )


class StaleClaim(Exception):
    """A delivery's lease ended while its worker was at it, and another took it over: the
    slow worker's outcome must not overwrite the other's."""


def _still_ours(items: list[_Item]) -> None:
    """Lock the deliveries being recorded and check each is still this claim's (its
    holder and lease as claimed); StaleClaim rolls the batch back otherwise."""
    claims = {item.delivery.pk: item.claim for item in items}
    current = WebhookDelivery.objects.select_for_update().filter(pk__in=claims)
    for pk, holder, until, status in current.values_list(
        "pk", "claimed_by", "next_attempt_at", "status"
    ):
        if (holder, until) != claims[pk] or status not in WAITING:
            raise StaleClaim(f"delivery {pk} was taken over (now {status}, {holder or '-'})")


def _record(items: list[_Item], applied: list, results: dict) -> None:
    """The outcome of each applied delivery, saved in the batch's transaction."""
    _still_ours(items)
    for result in applied:
        if isinstance(result, PaymentError):
            raise result  # refused for a reason a retry may clear: applied alone, failed
    now = timezone.now()  # one time for the batch: its outcomes are written together
    for item, result in zip(items, applied, strict=True):
        delivery, notification = item.delivery, item.notification
        if isinstance(result, PaymentNotFound):
            logger.warning(
                "webhook delivery %s: unknown reference %r",
                delivery.pk,
                (notification.reference or "")[:80],
            )
            kept = unmatched_record(delivery=delivery, notification=notification)
            error = f"unknown reference; {kept}" if kept else "unknown reference"
            _set_outcome(delivery, DeliveryStatus.IGNORED, error=error, at=now)
            results[delivery.pk] = _result(delivery, item=item)
            continue
        outcome = result.outcome if result is not None else ""
        session = result.session if result is not None else None
        if outcome == ConfirmOutcome.ALREADY_PROCESSED:
            status = DeliveryStatus.DUPLICATE
        else:
            status = DeliveryStatus.PROCESSED
        _set_outcome(delivery, status, session=session, at=now)
        if notification.alert and result is not None:
            code, message = notification.alert
            alert_raise(
                code=code,
                message=message,
                context={
                    "reference": notification.reference,
                    "provider": delivery.provider,
                    "provider_payment_id": notification.provider_payment_id,
                    "delivery": delivery.pk,
                },
            )
        results[delivery.pk] = _result(delivery, item=item, outcome=outcome)
    _save([item.delivery for item in items])


LOCK_CONFLICT_TRIES = 3


def _apply(items: list[_Item], results: dict, *, tries: int = 1) -> None:
    if not items:
        return
    try:
        notifications_apply(
            [Applied(item.notification, _evidence(item)) for item in items],
            what="webhook deliveries",
            after=lambda applied: _record(items, applied, results),
        )
    except Exception as exc:
        if len(items) == 1 and lock_conflict(exc) and tries < LOCK_CONFLICT_TRIES:
            # Another worker's batch held a lock this one needed: PostgreSQL rolled this
            # one back; alone, it goes through on another try.
            logger.info("webhook delivery %s: lock conflict, trying again", items[0].delivery.pk)
            _apply(items, results, tries=tries + 1)
            return
        if isinstance(exc, StaleClaim) and len(items) == 1:
            logger.warning("webhook delivery %s: %s; its outcome stands", items[0].delivery.pk, exc)
            results[items[0].delivery.pk] = _result(
                items[0].delivery, item=items[0], error=str(exc)
            )
            return
        if len(items) > 1:
            # Isolate the one at fault: each alone, in its own transaction.
            logger.warning(
                "a batch of %s deliveries failed (%s); applying one by one", len(items), exc
            )
            for item in items:
                _apply([item], results)
            return
        item = items[0]
        if isinstance(exc, (PaymentError, DatabaseError, *TRANSIENT)):
            logger.warning("webhook delivery %s failed: %s", item.delivery.pk, exc)
        else:
            logger.exception("webhook delivery %s crashed", item.delivery.pk)
        item.delivery.session = None
        _fail(item.delivery, exc, synchronous=item.adapter.synchronous)
        try:
            _save_failure(item)
        except DatabaseError:
            # The database itself is down: the lease brings the delivery back.
            logger.exception("could not record the failure of delivery %s", item.delivery.pk)
        results[item.delivery.pk] = _result(item.delivery, item=item, error=str(exc))


def _save_failure(item: _Item) -> None:
    """Record a failure only while the delivery is still this claim's and unsettled: when
    the batch's COMMIT went through but its reply was lost, or another worker took the
    delivery over, the outcome recorded with the effects stands."""
    delivery = item.delivery
    holder, until = item.claim
    fields = [*FINISH_FIELDS, "attempts"]
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, claimed_by=holder, next_attempt_at=until, status__in=WAITING
    ).update(**{name: getattr(delivery, name) for name in fields})
    if not updated:
        logger.warning(
            "webhook delivery %s: its outcome was recorded meanwhile; the failure is not",
            delivery.pk,
        )


def deliveries_process(deliveries: list[WebhookDelivery]) -> list[DeliveryResult]:
    """Process claimed deliveries as one batch; their results, in the same order."""
    results: dict[int, DeliveryResult] = {}
    items = []
    for delivery in deliveries:
        item = _Item(delivery, provider_get(delivery.provider))
        result = _read(item)
        if result is None:
            items.append(item)
        else:
            results[delivery.pk] = result
    items = _checked(items, results)
    notifications_resolve(items)  # no known reference: matched by provider payment id
    ended = [delivery for delivery in deliveries if delivery.pk in results]
    if ended:
        try:
            _save(ended)
        except DatabaseError:
            logger.exception("could not record the outcome of %s deliveries", len(ended))
    _apply(items, results)
    for delivery in deliveries:
        if delivery.status != DeliveryStatus.FAILED:
            logger.info(
                "webhook delivery %s %s (%s)",
                delivery.pk,
                delivery.status,
                delivery.provider,
                extra={"delivery": delivery.pk},
            )
    return [results[delivery.pk] for delivery in deliveries]


@dataclass
class RunReport:
    """What one pass of a worker did, by resulting delivery status."""

    outcomes: Counter = field(default_factory=Counter)

    @property
    def processed(self) -> int:
        return sum(self.outcomes.values())

    @property
    def retried(self) -> int:
        return self.processed

    @property
    def succeeded(self) -> int:
        return sum(self.outcomes[status] for status in SETTLED)

    @property
    def all_succeeded(self) -> bool:
        return self.succeeded == self.processed

    def as_dict(self) -> dict:
        return {
            "retried": self.processed,
            "succeeded": self.succeeded,
            "failed": self.outcomes[DeliveryStatus.FAILED],
            "dead": self.outcomes[DeliveryStatus.DEAD],
            "rejected": self.outcomes[DeliveryStatus.REJECTED],
        }


def deliveries_run(
    *, limit: int | None = None, worker: str = "", max_batches: int = 1, safety_net: bool = False
) -> RunReport:
    """Claim and process waiting deliveries, a batch at a time, up to `max_batches`
    (`safety_net`: as `retry_webhooks` does, see `deliveries_claim`)."""
    size = limit or settings.WEBHOOK_BATCH_SIZE
    if size < 1:
        raise ValueError("limit must be at least 1")
    report = RunReport()
    for _ in range(max_batches):
        claimed = deliveries_claim(limit=size, worker=worker, safety_net=safety_net)
        if not claimed:
            break
        for result in deliveries_process(claimed):
            report.outcomes[DeliveryStatus(result.status)] += 1
        if len(claimed) < size:
            break
    return report


def deliveries_drain(*, limit: int = 10_000) -> RunReport:
    """Process everything waiting now (tests, the demo, an operator)."""
    report = RunReport()
    while report.processed < limit:
        batch = deliveries_run(max_batches=1)
        if not batch.processed:
            break
        report.outcomes.update(batch.outcomes)
    return report


def delivery_process_now(delivery: WebhookDelivery) -> DeliveryResult:
    """Process one delivery its caller has just stored and holds the lease of (a
    synchronous protocol's callback, a replay)."""
    delivery.attempts += 1
    return deliveries_process([delivery])[0]


def delivery_retry(*, delivery_id: int) -> str:
    """Retry one failed delivery if it is still failed, due, and nobody else is at it.
    Returns the HTTP status the retry came to (as text), or "skipped"."""
    claimed = deliveries_claim(limit=1, only=[delivery_id])
    if not claimed or claimed[0].status != DeliveryStatus.FAILED:
        # A new delivery is the workers' to take; only a due retry is taken here.
        if claimed:
            WebhookDelivery.objects.filter(pk=delivery_id).update(
                next_attempt_at=None, claimed_by=""
            )
        return "skipped"
    deliveries_process(claimed)
    status = WebhookDelivery.objects.values_list("response_status", flat=True).get(pk=delivery_id)
    return str(status)


def delivery_replay(*, delivery_id: int, user=None) -> DeliveryResult:
    """Process a stored delivery again, as a new attempt linked to it (the original keeps
    its outcome), recording who asked for it (`user`; none from the command line). Raises
    PaymentError for a delivery that was never verified."""
    original = WebhookDelivery.objects.get(pk=delivery_id)
    if original.signature_valid is not True:
        raise PaymentError(
            "Only a delivery whose signature was verified can be replayed.", code="not_verified"
        )
    replay = WebhookDelivery.objects.create(
        provider=original.provider,
        endpoint=original.endpoint,
        remote_addr=original.remote_addr,
        headers=original.headers,
        query_string=original.query_string,
        body=bytes(original.body),
        body_size=original.body_size,
        signature_valid=True,
        event_id=original.event_id,
        replay_of=original.replay_of or original,
        next_attempt_at=timezone.now() + lease(),
        claimed_by="replay",
        requested_by=user if getattr(user, "pk", None) else None,
    )
    logger.info(
        "webhook delivery %s replayed as %s by %s", original.pk, replay.pk, user or "system"
    )
    return delivery_process_now(replay)


def backlog() -> dict:
    """Waiting deliveries now, and how long the oldest has waited (seconds)."""
    now = timezone.now()
    waiting = WebhookDelivery.objects.filter(
        status__in=[DeliveryStatus.RECEIVED, DeliveryStatus.FAILED]
    ).filter(Q(status=DeliveryStatus.RECEIVED) | Q(next_attempt_at__lte=now))
    summary = waiting.aggregate(waiting=Count("pk"), oldest=Min("received_at"))
    oldest = summary["oldest"]
    return {
        "waiting": summary["waiting"],
        "oldest_seconds": round((now - oldest).total_seconds(), 1) if oldest else 0.0,
    }


def backlog_check() -> dict:
    """The backlog, and an alert when its oldest delivery has waited too long."""
    state = backlog()
    if state["oldest_seconds"] > settings.WEBHOOK_BACKLOG_ALERT_SECONDS:
        alert_raise(
            code="webhook.backlog",
            message="Webhook deliveries are waiting longer than they should: are the "
            "webhook workers running?",
            context={"waiting": state["waiting"]},
            dedupe_key="webhook.backlog",
        )
    return state
