"""The kiosk payment terminal: Standard Webhooks (webhook-id / -timestamp / -signature)."""

import json

from django.conf import settings
from standardwebhooks.webhooks import Webhook

from payments.providers import (
    InboundRequest,
    MalformedPayload,
    Notification,
    PaymentState,
    ProviderPayment,
    SignatureInvalid,
    to_currency,
    to_decimal,
)

STATES = {
    "paid": PaymentState.APPROVED,
    "failed": PaymentState.FAILED,
    "cancelled": PaymentState.CANCELLED,
    "expired": PaymentState.EXPIRED,
}


class KioskAdapter:
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
        return request.header("webhook-id") or ""

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
        state = STATES.get(str(body["status"]))
        if state is None:
            raise MalformedPayload(f"unknown status: {str(body['status'])[:30]}")
        return Notification(
            reference=str(body["reference"])[:64],
            provider_payment_id=str(body["transaction_id"])[:100],
            state=state,
            amount=to_decimal(body["amount"]),
            currency=to_currency(body["currency"]),
            provider_status=str(body["status"]),
            raw=body,
        )

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        # The terminal starts the payment itself; the customer only needs the reference.
        return ProviderPayment("", {"terminal": True, "reference": session.reference})


adapter = KioskAdapter()
