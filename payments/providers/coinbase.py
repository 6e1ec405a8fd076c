"""Coinbase Commerce: a charge created through the Charge API, webhooks signed with
HMAC-SHA256 of the raw body (`X-CC-Webhook-Signature`). The Charge API is being retired
in favour of Coinbase Business checkouts, so this adapter stays small and separate."""

import hashlib
import hmac
import json

from django.conf import settings

from payments.errors import PaymentError, ProviderUnavailable
from payments.providers import (
    InboundRequest,
    MalformedPayload,
    Notification,
    PaymentState,
    ProviderPayment,
    SignatureInvalid,
    provider_register,
    return_url,
    to_currency,
    to_decimal,
    to_object,
    to_text,
)
from payments.providers._http import provider_json
from payments.providers.base import ProviderAdapter

API_VERSION = "2018-03-22"
STATES = {
    "charge:confirmed": PaymentState.APPROVED,
    "charge:resolved": PaymentState.APPROVED,
    "charge:pending": PaymentState.PROCESSING,
    "charge:delayed": PaymentState.PROCESSING,
    "charge:failed": PaymentState.FAILED,
}


def _api_headers() -> dict:
    key = settings.COINBASE_COMMERCE_API_KEY
    if not key:
        raise ProviderUnavailable(
            "Coinbase Commerce is not configured (COINBASE_COMMERCE_API_KEY)."
        )
    return {"X-CC-Api-Key": key, "X-CC-Version": API_VERSION}


def _api(path: str) -> str:
    return settings.COINBASE_COMMERCE_API_BASE.rstrip("/") + path


class CoinbaseAdapter(ProviderAdapter):
    name = "coinbase"

    def verify(self, request: InboundRequest) -> None:
        secret = settings.COINBASE_COMMERCE_WEBHOOK_SECRET
        if not secret:
            raise SignatureInvalid("COINBASE_COMMERCE_WEBHOOK_SECRET is not configured")
        received = (request.header("x-cc-webhook-signature") or "").strip().lower()
        digest = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not received or not hmac.compare_digest(digest, received):
            raise SignatureInvalid("X-CC-Webhook-Signature does not match")

    @staticmethod
    def _event(body: bytes) -> dict:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload("body is not JSON") from exc
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, dict):
            raise MalformedPayload("no event object")
        return event

    def event_id(self, request: InboundRequest) -> str:
        try:
            return to_text(self._event(request.body).get("id") or "", field="id", max_length=120)
        except MalformedPayload:
            return ""

    def parse(self, request: InboundRequest) -> Notification | None:
        event = self._event(request.body)
        kind = event.get("type")
        data = event.get("data")
        if not isinstance(kind, str) or not kind or not isinstance(data, dict):
            raise MalformedPayload("event without type or data")
        state = STATES.get(kind)
        if state is None:
            return None  # charge:created and anything new: nothing to do
        if data.get("id") in (None, ""):
            raise MalformedPayload("charge without id")
        charge_id = to_text(data["id"], field="data.id", max_length=100)
        metadata = to_object(data.get("metadata"), field="data.metadata")
        local = to_object(
            to_object(data.get("pricing"), field="data.pricing").get("local"),
            field="data.pricing.local",
        )
        reference = metadata.get("reference")
        alert = None
        if kind == "charge:delayed":
            alert = ("payment.delayed", "A crypto payment arrived after the charge expired.")
        return Notification(
            reference=to_text(reference, field="metadata.reference", max_length=64)
            if reference not in (None, "")
            else None,
            provider_payment_id=charge_id,
            state=state,
            amount=to_decimal(local.get("amount")),
            currency=to_currency(local.get("currency")),
            provider_status=kind,
            raw={"event": event.get("id"), "type": kind, "charge": data.get("code")},
            alert=alert,
        )

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        body = provider_json(
            "Coinbase Commerce",
            "POST",
            _api("/charges"),
            headers=_api_headers(),
            json={
                "name": (kwargs.get("description") or session.purpose)[:100],
                "description": (kwargs.get("description") or session.purpose)[:200],
                "pricing_type": "fixed_price",
                "local_price": {"amount": f"{session.amount:.2f}", "currency": session.currency},
                "metadata": {"reference": session.reference},
                "redirect_url": return_url(session, "reference"),
                "cancel_url": return_url(session, "reference", cancelled="1"),
            },
        )
        charge = (body or {}).get("data") or {}
        if not charge.get("id") or not charge.get("hosted_url"):
            raise PaymentError(
                "Coinbase Commerce did not create the charge.", code="provider_refused"
            )
        return ProviderPayment(
            str(charge["id"]),
            {"redirect_url": charge["hosted_url"], "code": charge.get("code", "")},
        )


adapter = CoinbaseAdapter()
provider_register(adapter)
