"""NOWPayments: an invoice created through its API, IPNs signed with HMAC-SHA512.

The signature is over the body re-serialised with keys sorted at every level. Python's
`json` would rewrite numbers (`0.0000635` → `6.35e-05`, `100.0` stays `100.0`…), so the body
is parsed with every number kept as the text it arrived as, and written back with exactly
those tokens: the re-serialisation is byte-faithful to what the provider signed.
"""

import hashlib
import hmac
import json
import re
from decimal import Decimal

from django.conf import settings

from core.text import text_storable
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
    settings_public_base,
    to_currency,
    to_decimal,
    to_text,
)
from payments.providers._http import provider_json
from payments.providers.base import ProviderAdapter

STATES = {
    "waiting": PaymentState.PENDING,
    "confirming": PaymentState.PROCESSING,
    "confirmed": PaymentState.PROCESSING,
    "sending": PaymentState.PROCESSING,
    "partially_paid": PaymentState.PARTIALLY_PAID,
    "finished": PaymentState.APPROVED,
    "failed": PaymentState.FAILED,
    "expired": PaymentState.EXPIRED,
    "refunded": PaymentState.REFUNDED,
}


class NumberToken(str):
    """A JSON number exactly as it was written."""


def _no_constants(name: str):
    raise MalformedPayload(f"not JSON: {name}")


def _unique_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedPayload(f"repeated key {key[:30]!r}")
        obj[key] = value
    return obj


def parse_faithful(body: bytes):
    """The body as Python objects, numbers kept as NumberToken, repeated keys refused."""
    try:
        text = body.decode("utf-8")
        return json.loads(
            text,
            parse_float=NumberToken,
            parse_int=NumberToken,
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload("body is not JSON") from exc


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(value, *, ensure_ascii: bool) -> str:
    """One JSON scalar. Without ensure_ascii, as JavaScript's JSON.stringify writes it:
    non-ASCII text as is, but a lone surrogate (which has no UTF-8 form; a parsed escaped
    pair is already one character) as a lower-case \\u escape."""
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    if ensure_ascii or not isinstance(value, str):
        return text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def serialise_sorted(value, *, ensure_ascii: bool = False) -> str:
    """Compact JSON with keys sorted at every level and numbers as received; always
    encodable as UTF-8."""
    if isinstance(value, dict):
        items = (
            _dumps(key, ensure_ascii=ensure_ascii)
            + ":"
            + serialise_sorted(value[key], ensure_ascii=ensure_ascii)
            for key in sorted(value)
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(serialise_sorted(v, ensure_ascii=ensure_ascii) for v in value) + "]"
    if isinstance(value, NumberToken):
        return str(value)
    return _dumps(value, ensure_ascii=ensure_ascii)


def signature_valid(body_obj, signature: str, secret: str) -> bool:
    """Compare with the provider's HMAC-SHA512. Non-ASCII text is tried as sent (as
    JavaScript writes it) and as \\u escapes (as Python reference integrations write it)."""
    signature = (signature or "").strip().lower()
    if not signature:
        return False
    for ensure_ascii in (False, True):
        canonical = serialise_sorted(body_obj, ensure_ascii=ensure_ascii).encode("utf-8")
        digest = hmac.new(secret.encode(), canonical, hashlib.sha512).hexdigest()
        if hmac.compare_digest(digest, signature):
            return True
    return False


def _plain(value):
    """A faithfully parsed value back to ordinary Python (numbers as Decimal)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, NumberToken):
        return Decimal(value)
    return value


def _api_headers() -> dict:
    key = settings.NOWPAYMENTS_API_KEY
    if not key:
        raise ProviderUnavailable("NOWPayments is not configured (NOWPAYMENTS_API_KEY).")
    return {"x-api-key": key}


def _api(path: str) -> str:
    return settings.NOWPAYMENTS_API_BASE.rstrip("/") + path


class NowPaymentsAdapter(ProviderAdapter):
    name = "nowpayments"

    def verify(self, request: InboundRequest) -> None:
        secret = settings.NOWPAYMENTS_IPN_SECRET
        if not secret:
            raise SignatureInvalid("NOWPAYMENTS_IPN_SECRET is not configured")
        try:
            body = parse_faithful(request.body)
        except MalformedPayload as exc:
            raise SignatureInvalid(f"unverifiable body: {exc}") from exc
        if not isinstance(body, dict):
            raise SignatureInvalid("unverifiable body: not a JSON object")
        if not signature_valid(body, request.header("x-nowpayments-sig") or "", secret):
            raise SignatureInvalid("x-nowpayments-sig does not match")

    def event_id(self, request: InboundRequest) -> str:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return ""
        if not isinstance(body, dict):
            return ""
        parts = (body.get("payment_id"), body.get("payment_status"), body.get("updated_at"))
        event_id = ":".join(str(p) for p in parts if p not in (None, ""))
        return event_id if text_storable(event_id) else ""

    def parse(self, request: InboundRequest) -> Notification:
        body = parse_faithful(request.body)
        if not isinstance(body, dict):
            raise MalformedPayload("body is not a JSON object")
        return self._notification(_plain(body))

    def _notification(self, body: dict) -> Notification:
        missing = [
            k for k in ("payment_id", "payment_status", "order_id") if body.get(k) in (None, "")
        ]
        if missing:
            raise MalformedPayload(f"missing fields: {', '.join(missing)}")
        status = body["payment_status"]
        state = STATES.get(status) if isinstance(status, str) else None
        if state is None:
            raise MalformedPayload(f"unknown payment_status: {str(status)[:30]}")
        alert = None
        if status == "partially_paid":
            alert = (
                "payment.partially_paid",
                "A crypto payment arrived short of the price; it is held until staff accept "
                "or refund it.",
            )
        return Notification(
            reference=to_text(body["order_id"], field="order_id", max_length=64),
            provider_payment_id=to_text(body["payment_id"], field="payment_id", max_length=100),
            state=state,
            amount=to_decimal(body.get("price_amount")),
            currency=to_currency(body.get("price_currency")),
            provider_status=status,
            raw={
                k: body.get(k)
                for k in (
                    "payment_id",
                    "invoice_id",
                    "payment_status",
                    "pay_amount",
                    "actually_paid",
                    "pay_currency",
                    "pay_address",
                )
            },
            alert=alert,
        )

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        """An invoice: NOWPayments' hosted page where the customer picks a coin and pays."""
        invoice = provider_json(
            "NOWPayments",
            "POST",
            _api("/v1/invoice"),
            headers=_api_headers(),
            json={
                "price_amount": float(session.amount),
                "price_currency": session.currency.lower(),
                "order_id": session.reference,
                "order_description": kwargs.get("description") or session.purpose,
                "ipn_callback_url": settings_public_base() + "/webhooks/nowpayments/",
                "success_url": return_url(session, "order_id"),
                "cancel_url": return_url(session, "order_id", cancelled="1"),
            },
        )
        if not invoice or not invoice.get("invoice_url"):
            raise PaymentError("NOWPayments did not create the invoice.", code="provider_refused")
        return ProviderPayment(
            "", {"redirect_url": invoice["invoice_url"], "invoice_id": str(invoice.get("id", ""))}
        )

    def fetch(self, provider_payment_id: str) -> Notification | None:
        """The payment's current state (GET /v1/payment/<id>), for polling."""
        payment = provider_json(
            "NOWPayments",
            "GET",
            _api(f"/v1/payment/{provider_payment_id}"),
            headers=_api_headers(),
        )
        if payment is None:
            return None
        return self._notification(payment)


adapter = NowPaymentsAdapter()
provider_register(adapter)
