"""Click's two callbacks, applied through the one confirmation path.

Prepare (`action=0`) checks the order and moves the session to processing, answering a
`merchant_prepare_id`; complete (`action=1`) confirms it and answers a
`merchant_confirm_id`. Click always gets HTTP 200 with its own error codes; every callback
is in the webhook log first, like any other provider's.
"""

import logging

from django.db import DatabaseError

from payments.errors import PaymentError, PaymentNotFound
from payments.models import (
    CLOSED_UNPAID_STATUSES,
    AuditSource,
    DeliveryStatus,
    PaymentSession,
    PaymentStatus,
    Provider,
    WebhookDelivery,
)
from payments.providers import click
from payments.providers.click import ClickCallback, ClickError
from payments.services.confirmation import (
    ConfirmOutcome,
    Evidence,
    payment_cancel,
    payment_confirm,
    payment_mark_processing,
)
from payments.services.webhooks import DeliveryResponse, _finish, _inbound

logger = logging.getLogger(__name__)

# How a Click error code is kept in the webhook log.
LOG_STATUS = {
    click.SUCCESS: DeliveryStatus.PROCESSED,
    click.CANCELLED: DeliveryStatus.PROCESSED,
    click.ALREADY_PAID: DeliveryStatus.DUPLICATE,
    click.USER_NOT_FOUND: DeliveryStatus.IGNORED,
    click.TRANSACTION_NOT_FOUND: DeliveryStatus.IGNORED,
    click.UPDATE_FAILED: DeliveryStatus.FAILED,
}


def _session(reference: str) -> PaymentSession:
    session = PaymentSession.objects.filter(reference=reference, provider=Provider.CLICK).first()
    if session is None:
        raise ClickError(click.USER_NOT_FOUND, "unknown merchant_trans_id")
    return session


def _check_order(session: PaymentSession, callback: ClickCallback) -> None:
    if session.status in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
        raise ClickError(click.ALREADY_PAID)
    if session.status in CLOSED_UNPAID_STATUSES:
        raise ClickError(click.CANCELLED, f"the session is {session.status}")
    if callback.amount != session.amount or session.currency != "UZS":
        raise ClickError(
            click.BAD_AMOUNT, f"amount {callback.amount_text}, expected {session.amount}"
        )


def _evidence(delivery, callback: ClickCallback) -> Evidence:
    return Evidence(
        source=AuditSource.WEBHOOK,
        delivery=delivery,
        data={
            "click_trans_id": callback.click_trans_id,
            "action": callback.action,
            "error": callback.error,
        },
    )


def _cancel(session, callback, delivery) -> None:
    payment_cancel(
        reference=session.reference,
        evidence=_evidence(delivery, callback),
        provider_payment_id=callback.click_trans_id,
    )
    raise ClickError(click.CANCELLED, f"Click reported error {callback.error}")


def _prepare(callback: ClickCallback, delivery) -> dict:
    session = _session(callback.merchant_trans_id)
    if callback.error < 0 and session.is_open:
        _cancel(session, callback, delivery)
    _check_order(session, callback)
    result = payment_mark_processing(
        reference=session.reference,
        evidence=_evidence(delivery, callback),
        provider_payment_id=callback.click_trans_id,
        replace=True,
    )
    delivery.session = result.session
    return {"merchant_prepare_id": session.pk}


def _complete(callback: ClickCallback, delivery) -> dict:
    session = _session(callback.merchant_trans_id)
    delivery.session = session
    prepared = (
        callback.merchant_prepare_id == str(session.pk)
        and session.provider_payment_id == callback.click_trans_id
    )
    if not prepared:
        raise ClickError(click.TRANSACTION_NOT_FOUND, "unknown merchant_prepare_id")
    if callback.error < 0:
        if session.is_open:
            _cancel(session, callback, delivery)
        if session.status in CLOSED_UNPAID_STATUSES:
            raise ClickError(click.CANCELLED, f"Click reported error {callback.error}")
    _check_order(session, callback)
    result = payment_confirm(
        reference=session.reference,
        evidence=_evidence(delivery, callback),
        amount=callback.amount,
        currency="UZS",
        provider_payment_id=callback.click_trans_id,
    )
    if result.outcome == ConfirmOutcome.ALREADY_PROCESSED:
        raise ClickError(click.ALREADY_PAID)
    return {"merchant_confirm_id": session.pk}


def click_process(*, delivery: WebhookDelivery) -> DeliveryResponse:
    """Apply one stored Click callback and answer in Click's terms (always HTTP 200)."""
    action = click.COMPLETE if delivery.endpoint.endswith("complete") else click.PREPARE
    delivery.attempts += 1
    request = _inbound(delivery)
    fields = {}
    try:
        callback = click.callback_read(
            request.body, request.header("content-type") or "", action=action
        )
        fields = callback.fields
        delivery.signature_valid = True
        delivery.event_id = f"{callback.click_trans_id}:{action}"[:120]
        ids = (
            _prepare(callback, delivery)
            if action == click.PREPARE
            else _complete(callback, delivery)
        )
        code = click.SUCCESS
    except ClickError as exc:
        code, ids = exc.code, {}
        if code == click.SIGN_FAILED:
            delivery.signature_valid = False
            logger.warning("click delivery %s: %s", delivery.pk, exc)
        error = f"click {code}: {exc}"
    except PaymentNotFound:
        code, ids, error = click.USER_NOT_FOUND, {}, "unknown merchant_trans_id"
    except (DatabaseError, PaymentError) as exc:
        logger.exception("click delivery %s could not be applied", delivery.pk)
        code, ids, error = click.UPDATE_FAILED, {}, f"{exc.__class__.__name__}: {exc}"
    else:
        error = ""
    if not fields:
        fields = dict(_form_fields(request.body))
    status = LOG_STATUS.get(code, DeliveryStatus.REJECTED)
    try:
        _finish(delivery, status, 200, error=error, session=delivery.session)
    except DatabaseError:
        logger.exception("could not record the outcome of click delivery %s", delivery.pk)
        code = click.UPDATE_FAILED
    if code == click.SUCCESS:
        logger.info(
            "click delivery %s: %s ok for %s",
            delivery.pk,
            "prepare" if action == click.PREPARE else "complete",
            fields.get("merchant_trans_id", "")[:64],
        )
    return DeliveryResponse(200, click.answer(fields, code, **ids))


def _form_fields(body: bytes):
    from urllib.parse import parse_qsl

    try:
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    except ValueError:
        return []


def click_reject(*, delivery: WebhookDelivery, error: str) -> DeliveryResponse:
    """Refuse a request before reading it (a GET, say), in Click's terms: HTTP 200 with
    "error in request from click", so Click does not read an HTTP error as an outage."""
    _finish(delivery, DeliveryStatus.REJECTED, 200, error=f"click {click.BAD_REQUEST}: {error}")
    return DeliveryResponse(200, click.answer({}, click.BAD_REQUEST))
