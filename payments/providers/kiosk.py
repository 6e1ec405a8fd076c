"""The kiosk payment terminal: Standard Webhooks (webhook-id / -timestamp / -signature)."""

import json

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
