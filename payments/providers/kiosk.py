"""The kiosk payment terminal: Standard Webhooks (webhook-id / -timestamp / -signature).

Both sides of the protocol live here: the adapter that verifies and reads a terminal's
notification, and `kiosk_notification` / `kiosk_send`, which sign and send one the way a
terminal does (the integration self-test plays the terminal with them).
"""

import json
import time
import uuid
from datetime import UTC, datetime

import requests
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from core.text import text_storable
from payments.providers import (
    InboundRequest,
    MalformedPayload,
    Notification,
    PaymentState,
    ProviderPayment,
    SignatureInvalid,
    provider_register,
    to_currency,
    to_decimal,
    to_text,
)
from payments.providers.base import ProviderAdapter

STATES = {
    "paid": PaymentState.APPROVED,
    "failed": PaymentState.FAILED,
    "cancelled": PaymentState.CANCELLED,
    "expired": PaymentState.EXPIRED,
}


class KioskAdapter(ProviderAdapter):
    name = "kiosk"

    def verify(self, request: InboundRequest) -> None:
        secret = settings.KIOSK_WEBHOOK_SECRET
        if not secret:
            raise SignatureInvalid("KIOSK_WEBHOOK_SECRET is not configured")
        try:
            # Verifies the signature and the 5-minute timestamp window.
            Webhook(secret).verify(request.body, request.headers, json_parse=False)
        except Exception as exc:  # the package raises several types for bad input
            raise SignatureInvalid(str(exc)[:200] or exc.__class__.__name__) from exc

    def event_id(self, request: InboundRequest) -> str:
        event_id = request.header("webhook-id") or ""
        return event_id if text_storable(event_id) else ""

    def parse(self, request: InboundRequest) -> Notification:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedPayload("body is not a JSON object")
        fields = ("transaction_id", "reference", "status", "amount", "currency")
        missing = [k for k in fields if body.get(k) in (None, "")]
        if missing:
            raise MalformedPayload(f"missing fields: {', '.join(missing)}")
        status = body["status"]
        state = STATES.get(status) if isinstance(status, str) else None
        if state is None:
            raise MalformedPayload(f"unknown status: {str(status)[:30]}")
        return Notification(
            reference=to_text(body["reference"], field="reference", max_length=64),
            provider_payment_id=to_text(
                body["transaction_id"], field="transaction_id", max_length=100
            ),
            state=state,
            amount=to_decimal(body["amount"]),
            currency=to_currency(body["currency"]),
            provider_status=status,
            raw=body,
        )

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        # The terminal starts the payment itself; the customer only needs the reference.
        return ProviderPayment("", {"terminal": True, "reference": session.reference})


adapter = KioskAdapter()
provider_register(adapter)


def kiosk_notification(
    *,
    secret: str,
    reference: str,
    status: str = "paid",
    amount="10.00",
    currency: str = "BRL",
    transaction_id: str | None = None,
    msg_id: str | None = None,
    timestamp: float | None = None,
):
    """(headers, body bytes) of one terminal notification, signed with `secret`."""
    body = json.dumps(
        {
            "transaction_id": transaction_id or f"tx_{uuid.uuid4().hex[:16]}",
            "reference": reference,
            "status": status,
            "amount": str(amount),
            "currency": currency,
        }
    )
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time() if timestamp is None else timestamp)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature,
    }
    return headers, body.encode()


def kiosk_send(url: str, *, secret: str, timeout: float = 10, **fields) -> int:
    """Post one signed terminal notification to `url`; the HTTP status it was answered."""
    headers, body = kiosk_notification(secret=secret, **fields)
    return requests.post(url, data=body, headers=headers, timeout=timeout).status_code
