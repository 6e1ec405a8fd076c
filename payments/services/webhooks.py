"""The webhook log and its processing.

Every request to a webhook URL is stored first, in its own transaction, before anything
else happens (`delivery_record`). `delivery_process` then verifies, parses and applies it
through the confirmation path, and records the outcome on the delivery. Processing reads
only the stored delivery, so a retry or a replay from the admin does exactly what the
first attempt did.
"""

import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from config.logging import redact
from notifications.services import alert_raise
from payments.errors import PaymentNotFound, ProviderUnavailable
from payments.models import AuditSource, DeliveryStatus, Provider, WebhookDelivery
from payments.providers import (
    InboundRequest,
    MalformedPayload,
    Notification,
    PaymentState,
    SignatureInvalid,
    provider_get,
)
from payments.services.confirmation import (
    ConfirmOutcome,
    Evidence,
    payment_cancel,
    payment_confirm,
    payment_expire,
    payment_fail,
    payment_mark_processing,
    payment_refund,
)

logger = logging.getLogger(__name__)

REDACTED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}


@dataclass(frozen=True)
class DeliveryResponse:
    status: int
    body: dict


def _clean_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name.lower(): ("[redacted]" if name.lower() in REDACTED_HEADERS else str(value)[:2000])
        for name, value in headers.items()
    }


def delivery_record(
    *,
    provider: str,
    endpoint: str,
    headers: dict[str, str],
    query_string: str,
    body: bytes,
    remote_addr: str | None,
    body_size: int | None = None,
) -> WebhookDelivery:
    """Store an incoming request as it arrived, committed at once (its own transaction)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            provider=provider,
            endpoint=endpoint,
            headers=_clean_headers(headers),
            query_string=query_string[:4000],
            body=body,
            body_size=len(body) if body_size is None else body_size,
            remote_addr=remote_addr or None,
        )
    logger.info(
        "webhook delivery %s stored (%s, %s bytes)",
        delivery.pk,
        provider,
        delivery.body_size,
        extra={"delivery": delivery.pk},
    )
    return delivery


def delivery_reject(*, delivery: WebhookDelivery, status: int, error: str) -> DeliveryResponse:
    """Close a delivery that is refused before processing (too big, wrong method)."""
    _finish(delivery, DeliveryStatus.REJECTED, status, error=error)
    return DeliveryResponse(status, {"error": error})


FINISH_FIELDS = [
    "status",
    "response_status",
    "error",
    "traceback",
    "processed_at",
    "session",
    "next_attempt_at",
    "attempts",
    "signature_valid",
    "event_id",
]


def _finish(delivery, status, http_status, *, error="", trace="", session=None) -> None:
    delivery.status = status
    delivery.response_status = http_status
    delivery.error = redact(error)[:4000]
    delivery.traceback = redact(trace)[:20000]
    delivery.processed_at = timezone.now()
    if session is not None:
        delivery.session = session
    if status != DeliveryStatus.FAILED:
        delivery.next_attempt_at = None
    # Only what processing changes: the stored request (body, headers) is written once.
    delivery.save(update_fields=FINISH_FIELDS)


def _inbound(delivery: WebhookDelivery) -> InboundRequest:
    return InboundRequest(
        headers=dict(delivery.headers),
        query=dict(parse_qsl(delivery.query_string, keep_blank_values=True)),
        body=bytes(delivery.body),
        received_at=delivery.received_at,
    )


def _apply(notification: Notification, evidence: Evidence):
    reference = notification.reference or ""
    state = notification.state
    if state == PaymentState.APPROVED:
        return payment_confirm(
            reference=reference,
            evidence=evidence,
            amount=notification.amount,
            currency=notification.currency,
            provider_payment_id=notification.provider_payment_id,
        )
    payment_id = notification.provider_payment_id
    if state == PaymentState.PROCESSING:
        return payment_mark_processing(
            reference=reference, evidence=evidence, provider_payment_id=payment_id
        )
    if state == PaymentState.FAILED:
        return payment_fail(reference=reference, evidence=evidence, provider_payment_id=payment_id)
    if state == PaymentState.CANCELLED:
        return payment_cancel(
            reference=reference, evidence=evidence, provider_payment_id=payment_id
        )
    if state == PaymentState.EXPIRED:
        return payment_expire(
            reference=reference, evidence=evidence, force=True, provider_payment_id=payment_id
        )
    if state in (PaymentState.REFUNDED, PaymentState.CHARGED_BACK):
        return payment_refund(
            provider_payment_id=payment_id,
            reference=reference,
            evidence=evidence,
            amount=notification.amount,
            chargeback=state == PaymentState.CHARGED_BACK,
        )
    return None  # pending: nothing to do


def _schedule_retry(delivery: WebhookDelivery) -> None:
    if delivery.attempts >= settings.WEBHOOK_RETRY_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        delivery.next_attempt_at = None
        delivery.save(update_fields=["status", "next_attempt_at"])
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
    delivery.save(update_fields=["next_attempt_at"])
    from payments.tasks import webhook_delivery_retry

    when, pk = delivery.next_attempt_at, delivery.pk
    transaction.on_commit(
        lambda: webhook_delivery_retry.using(run_after=when).enqueue(delivery_id=pk)
    )


def _event_already_processed(delivery: WebhookDelivery) -> bool:
    """The provider's event id (its idempotency key) was already applied by another
    delivery: a retry of something done. Replays of the same delivery are not repeats."""
    if not delivery.event_id:
        return False
    return (
        WebhookDelivery.objects.filter(
            provider=delivery.provider,
            event_id=delivery.event_id,
            status=DeliveryStatus.PROCESSED,
        )
        .exclude(pk=delivery.pk)
        .exists()
    )


def delivery_process(
    *, delivery_id: int, delivery: WebhookDelivery | None = None
) -> DeliveryResponse:
    """Verify, parse and apply one stored delivery; record and return the outcome.

    Signature problems → 401 (rejected), unreadable payloads → 400 (rejected), unknown
    references and other topics → 200 (ignored), repeats → 200 (duplicate), provider or
    database trouble → 503 (failed, retried with back-off). Never raises for those.
    `delivery` saves reading back the row the caller has just stored.
    """
    if delivery is None or delivery.pk != delivery_id:
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.provider == Provider.CLICK:
        from payments.services.click import click_process

        return click_process(delivery=delivery)
    adapter = provider_get(delivery.provider)
    delivery.attempts += 1
    request = _inbound(delivery)
    try:
        if delivery.signature_valid is not True:
            try:
                adapter.verify(request)
            except SignatureInvalid as exc:
                delivery.signature_valid = False
                logger.warning("webhook delivery %s: bad signature (%s)", delivery.pk, exc)
                _finish(delivery, DeliveryStatus.REJECTED, 401, error=f"signature: {exc}")
                return DeliveryResponse(401, {"error": "invalid signature"})
            delivery.signature_valid = True
        delivery.event_id = adapter.event_id(request)[:120]
        if _event_already_processed(delivery):
            _finish(delivery, DeliveryStatus.DUPLICATE, 200, error="event already processed")
            return DeliveryResponse(200, {"status": "duplicate"})
        notification = adapter.parse(request)
        if notification is None:
            _finish(delivery, DeliveryStatus.IGNORED, 200, error="not a payment notification")
            return DeliveryResponse(200, {"status": "ignored"})
        evidence = Evidence(
            source=AuditSource.WEBHOOK,
            delivery=delivery,
            data={"provider_status": notification.provider_status, "event_id": delivery.event_id},
        )
        try:
            result = _apply(notification, evidence)
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
        except PaymentNotFound:
            logger.warning(
                "webhook delivery %s: unknown reference %r",
                delivery.pk,
                (notification.reference or "")[:80],
            )
            _finish(delivery, DeliveryStatus.IGNORED, 200, error="unknown reference")
            return DeliveryResponse(200, {"status": "ignored", "reason": "unknown reference"})
        session = result.session if result else None
        if result is not None and result.outcome == ConfirmOutcome.ALREADY_PROCESSED:
            _finish(delivery, DeliveryStatus.DUPLICATE, 200, session=session)
            return DeliveryResponse(200, {"status": "duplicate"})
        _finish(delivery, DeliveryStatus.PROCESSED, 200, session=session)
        logger.info(
            "webhook delivery %s processed: %s %s",
            delivery.pk,
            notification.state,
            getattr(session, "reference", "-"),
            extra={"reference": getattr(session, "reference", "")},
        )
        return DeliveryResponse(
            200, {"status": "processed", "outcome": result.outcome if result else "none"}
        )
    except MalformedPayload as exc:
        _finish(delivery, DeliveryStatus.REJECTED, 400, error=f"malformed: {exc}")
        return DeliveryResponse(400, {"error": f"malformed payload: {exc}"})
    except (ProviderUnavailable, OperationalError, InterfaceError) as exc:
        logger.warning("webhook delivery %s failed: %s", delivery.pk, exc)
        return _fail(delivery, 503, exc, transient=True)
    except Exception as exc:
        logger.exception("webhook delivery %s crashed", delivery.pk)
        return _fail(delivery, 500, exc, transient=False)


def _fail(delivery, http_status: int, exc: Exception, *, transient: bool) -> DeliveryResponse:
    try:
        _finish(
            delivery,
            DeliveryStatus.FAILED,
            http_status,
            error=f"{exc.__class__.__name__}: {exc}",
            trace=traceback.format_exc(),
        )
        _schedule_retry(delivery)
    except DatabaseError:
        # The database itself is down: the provider's own retry will bring it back.
        logger.exception("could not record the failure of delivery %s", delivery.pk)
    return DeliveryResponse(
        http_status, {"error": "temporary failure, retry later" if transient else "internal error"}
    )


def delivery_replay(*, delivery_id: int) -> DeliveryResponse:
    """Process a stored delivery again (admin, command, retry task)."""
    return delivery_process(delivery_id=delivery_id)
