"""Mercado Pago (PIX) through the official SDK.

The SDK has no base-URL setting, so `_BaseUrlClient` (a subclass of the SDK's own HTTP
client) swaps the base for MERCADOPAGO_API_BASE: tests and the demo point the real SDK at
a local fake that speaks the same protocol.
"""

import json
import logging

import requests
from django.conf import settings
from mercadopago import SDK
from mercadopago.config import RequestOptions
from mercadopago.errors import MercadoPagoError, MPConnectionError, MPServerError
from mercadopago.http.http_client import HttpClient
from mercadopago.webhook import InvalidWebhookSignatureError, WebhookSignatureValidator

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
    to_currency,
    to_decimal,
    to_text,
)
from payments.providers.base import ProviderAdapter

logger = logging.getLogger(__name__)

REAL_BASE = "https://api.mercadopago.com"
STATES = {
    "approved": PaymentState.APPROVED,
    "authorized": PaymentState.PROCESSING,
    "in_process": PaymentState.PROCESSING,
    "in_mediation": PaymentState.PROCESSING,
    "pending": PaymentState.PENDING,
    "rejected": PaymentState.FAILED,
    "cancelled": PaymentState.CANCELLED,
    "refunded": PaymentState.REFUNDED,
    "charged_back": PaymentState.CHARGED_BACK,
}


class _BaseUrlClient(HttpClient):
    def request(self, method, url, *args, **kwargs):
        base = settings.MERCADOPAGO_API_BASE.rstrip("/")
        if url.startswith(REAL_BASE) and base != REAL_BASE:
            url = base + url[len(REAL_BASE) :]
        return super().request(method, url, *args, **kwargs)


def _options(**extra) -> RequestOptions:
    token = settings.MERCADOPAGO_ACCESS_TOKEN
    if not token:
        raise ProviderUnavailable("Mercado Pago is not configured (MERCADOPAGO_ACCESS_TOKEN).")
    return RequestOptions(
        access_token=token,
        connection_timeout=float(settings.PROVIDER_TIMEOUT_SECONDS),
        max_retries=0,  # Confirma retries by itself, outside any request
        **extra,
    )


def _call(fn, *args):
    """The SDK call's JSON answer; None for 404. ProviderUnavailable when Mercado Pago cannot
    be reached or did not answer usefully (to retry), PaymentError when it refused.

    The SDK answers `{"status", "response"}` for every HTTP status with a JSON body. It
    raises `MPServerError` for a body that is not JSON (a proxy's error page), whatever
    the status, and requests' errors for the network; later SDK versions may raise its
    other typed errors (`MPConnectionError`, one subclass per 4xx status) too."""
    try:
        result = fn(*args)
    except (requests.RequestException, OSError, MPConnectionError) as exc:
        raise ProviderUnavailable(f"Mercado Pago unreachable: {exc.__class__.__name__}") from exc
    except MercadoPagoError as exc:
        if isinstance(exc, MPServerError) or not 400 <= exc.status_code < 500:
            raise ProviderUnavailable(
                f"Mercado Pago answered {exc.status_code} ({exc.error or 'unreadable'})"
            ) from exc
        status, response = exc.status_code, exc.response  # a typed 4xx: same as the status
    else:
        status, response = result.get("status") or 0, result.get("response")
    return _answer(status, response)


def _answer(status: int, response):
    if status >= 500 or status in (401, 403, 408, 429):
        # 401/403: a rotated or wrong token is ours to fix; the notification stays retried.
        raise ProviderUnavailable(f"Mercado Pago answered {status}")
    if status == 404:
        return None
    if status >= 400:
        message = response.get("message", "") if isinstance(response, dict) else ""
        raise PaymentError(
            f"Mercado Pago refused the request ({status}): {message}"[:300], code="provider_refused"
        )
    return response


def _masked_email(email) -> str:
    if not isinstance(email, str) or "@" not in email:
        return ""
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain[:80]}"


def _masked_document(kind, number) -> str:
    """The document's type and its last two digits, a CPF as printed tickets show one
    (***.***.***-09)."""
    kind = str(kind or "")[:10]
    digits = "".join(ch for ch in str(number or "") if ch.isdigit())
    if not digits:
        return kind
    if kind.upper() == "CPF" and len(digits) == 11:
        return f"CPF ***.***.***-{digits[-2:]}"
    return f"{kind} ***{digits[-2:]}".strip()


def payer_masked(payer) -> dict:
    """Who paid, as far as Mercado Pago tells it, masked as Confirma masks personal data
    wherever it keeps it (printed tickets: "Maria S.", CPF ***.***.***-09): the first
    name and the last name's initial, the e-mail's first letter and domain, a document's
    type and last two digits. Never the whole e-mail or number."""
    if not isinstance(payer, dict):
        return {}
    identification = payer.get("identification")
    identification = identification if isinstance(identification, dict) else {}
    first = str(payer.get("first_name") or "").split()
    last = str(payer.get("last_name") or "").split()
    name = first[0][:20] if first else ""
    if name and last:
        name = f"{name} {last[-1][0]}."
    masked = {
        "name": name,
        "email": _masked_email(payer.get("email")),
        "document": _masked_document(identification.get("type"), identification.get("number")),
        "payer_id": str(payer.get("id") or "")[:40],
    }
    return {key: value for key, value in masked.items() if value and text_storable(value)}


def _sdk() -> SDK:
    return SDK(settings.MERCADOPAGO_ACCESS_TOKEN or "unset", http_client=_BaseUrlClient())


class MercadoPagoAdapter(ProviderAdapter):
    name = "mercadopago"
    currencies = ("BRL",)
    # PIX date_of_expiration must be 30 minutes to 30 days ahead.
    min_expiry_minutes = 31
    keeps_unmatched = True

    def verify(self, request: InboundRequest) -> None:
        secret = settings.MERCADOPAGO_WEBHOOK_SECRET
        if not secret:
            raise SignatureInvalid("MERCADOPAGO_WEBHOOK_SECRET is not configured")
        received_ms = int(request.received_at.timestamp() * 1000)
        try:
            WebhookSignatureValidator.validate(
                request.header("x-signature"),
                request.header("x-request-id"),
                request.query.get("data.id"),
                secret,
                tolerance_seconds=settings.WEBHOOK_TIMESTAMP_TOLERANCE,
                now=lambda: received_ms,
            )
        except InvalidWebhookSignatureError as exc:
            raise SignatureInvalid(str(getattr(exc, "reason", exc))) from exc
        except (ValueError, TypeError) as exc:
            raise SignatureInvalid("malformed signature") from exc

    def event_id(self, request: InboundRequest) -> str:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        notification_id = body.get("id") if isinstance(body, dict) else None
        event_id = str(notification_id or request.header("x-request-id") or "")
        return event_id if text_storable(event_id) else ""

    def parse(self, request: InboundRequest) -> Notification | None:
        """None for topics other than payments. A payment notification only names the
        payment (`needs_fetch`): its state is fetched by the worker."""
        topic = request.query.get("type") or request.query.get("topic")
        if request.body:
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedPayload("body is not JSON") from exc
            if not isinstance(body, dict):
                raise MalformedPayload("body is not a JSON object")
            topic = topic or body.get("type")
        data_id = request.query.get("data.id")
        if topic != "payment":
            return None
        if not data_id or not data_id.isdigit() or len(data_id) > 30:
            raise MalformedPayload("missing or invalid data.id")
        return Notification(
            reference=None,
            provider_payment_id=data_id,
            state=PaymentState.PENDING,
            provider_status="notified",
            needs_fetch=True,
        )

    def fetch(self, provider_payment_id: str) -> Notification | None:
        payment = _call(_sdk().payment().get, provider_payment_id, _options())
        if payment is None:
            return None  # not a payment of this account (e.g. the panel's test notification)
        if not isinstance(payment, dict):
            raise MalformedPayload("the payment is not a JSON object")
        status = payment.get("status")
        state = STATES.get(status) if isinstance(status, str) else None
        if state is None:
            raise MalformedPayload(f"unknown payment status {str(status)[:30]}")
        if state == PaymentState.CANCELLED and payment.get("status_detail") == "expired":
            state = PaymentState.EXPIRED
        reference = payment.get("external_reference")
        return Notification(
            reference=to_text(reference, field="external_reference", max_length=64)
            if reference not in (None, "")
            else None,
            provider_payment_id=to_text(
                payment.get("id") or provider_payment_id, field="id", max_length=100
            ),
            state=state,
            amount=to_decimal(payment.get("transaction_amount")),
            currency=to_currency(payment.get("currency_id")),
            provider_status=status,
            raw={
                "id": payment.get("id"),
                "status": status,
                "status_detail": payment.get("status_detail"),
                "external_reference": reference if isinstance(reference, str | int) else None,
                "description": payment.get("description"),
                "date_approved": payment.get("date_approved"),
                "payer": payer_masked(payment.get("payer")),
            },
        )

    def create_payment(self, session, *, payer_email: str = "", description: str = ""):
        data = {
            "transaction_amount": float(session.amount),
            "description": description or f"Confirma {session.purpose}",
            "payment_method_id": "pix",
            "payer": {"email": payer_email or "customer@example.com"},
            "external_reference": session.reference,
            "notification_url": settings.PUBLIC_BASE_URL.rstrip("/") + "/webhooks/mercadopago/",
            "date_of_expiration": session.expires_at.isoformat(timespec="milliseconds"),
        }
        options = _options(custom_headers={"x-idempotency-key": session.idempotency_key})
        payment = _call(_sdk().payment().create, data, options)
        if payment is None:
            raise PaymentError("Mercado Pago did not create the payment.", code="provider_refused")
        transaction_data = (payment.get("point_of_interaction") or {}).get("transaction_data", {})
        return ProviderPayment(
            str(payment["id"]),
            {
                "qr_code": transaction_data.get("qr_code", ""),
                "qr_code_base64": transaction_data.get("qr_code_base64", ""),
                "ticket_url": transaction_data.get("ticket_url", ""),
                "expires_at": payment.get("date_of_expiration"),
            },
        )


adapter = MercadoPagoAdapter()
provider_register(adapter)
