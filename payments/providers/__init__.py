"""Provider adapters: each verifies its signature, parses its message into one common
`Notification`, and (where the provider has an API) creates and looks up payments.

`payments.services.webhooks` drives them; nothing here touches the database.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from config.text import text_storable


class SignatureInvalid(Exception):
    """The message is not from the provider (bad, missing or stale signature)."""


class MalformedPayload(Exception):
    """The message is signed (or unsigned by design) but cannot be understood."""


class PaymentState(StrEnum):
    APPROVED = "approved"
    PROCESSING = "processing"
    PENDING = "pending"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    CHARGED_BACK = "charged_back"


@dataclass(frozen=True)
class InboundRequest:
    headers: dict[str, str]  # lower-case names
    query: dict[str, str]
    body: bytes
    received_at: datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Notification:
    """What a provider told us, in one shape for every provider."""

    reference: str | None
    provider_payment_id: str
    state: PaymentState
    amount: Decimal | None = None
    currency: str | None = None
    provider_status: str = ""
    raw: dict = field(default_factory=dict)
    # Something staff must look at even though the state itself is handled (code, message).
    alert: tuple[str, str] | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """A payment created at the provider for a session."""

    provider_payment_id: str
    data: dict  # shown to the customer (QR code, ticket URL…)


_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT = Decimal("999999999999.99")


def to_decimal(value) -> Decimal | None:
    """A provider's amount as Decimal with cents; MalformedPayload for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedPayload("not an amount")
    try:
        amount = Decimal(str(value))
        if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
            raise InvalidOperation
        return amount.quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise MalformedPayload(f"not an amount: {str(value)[:40]}") from exc


def to_text(value, *, field: str, max_length: int) -> str:
    """A provider's identifier or reference as text (a JSON string or a whole number),
    cut to `max_length`; MalformedPayload for any other JSON type (object, array, boolean,
    fraction) and for text the database cannot hold (NUL, lone surrogates)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MalformedPayload(f"{field} is not text")
    if isinstance(value, float | Decimal):
        number = Decimal(value)
        if not number.is_finite() or number != number.to_integral_value():
            raise MalformedPayload(f"{field} is not text")
        value = format(number, "f")
    text = str(value)
    if not text_storable(text):
        raise MalformedPayload(f"{field} holds characters that cannot be stored")
    return text[:max_length]


def to_object(value, *, field: str) -> dict:
    """A JSON object the provider may leave out ({} then); MalformedPayload for any other
    JSON type."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field} is not an object")
    return value


def to_currency(value) -> str | None:
    """An ISO 4217 code, upper-cased; MalformedPayload for anything else."""
    if value is None or value == "":
        return None
    code = str(value).upper()
    if not _CURRENCY.match(code):
        raise MalformedPayload(f"not a currency: {str(value)[:10]}")
    return code


def provider_get(name: str):
    from payments.providers import click, coinbase, kiosk, mercadopago, nowpayments

    adapters = {
        "mercadopago": mercadopago.adapter,
        "kiosk": kiosk.adapter,
        "click": click.adapter,
        "nowpayments": nowpayments.adapter,
        "coinbase": coinbase.adapter,
    }
    return adapters.get(name)


def return_url(session, param: str = "reference", **extra: str) -> str:
    """Where the provider sends the customer back: the purpose's return page (or the
    payment's own page) with the reference under the name this provider uses."""
    from urllib.parse import urlencode

    base = settings_public_base()
    path = session.metadata.get("return_path") or f"/payments/{session.reference}/"
    query = urlencode({param: session.reference, **extra})
    return f"{base}{path}{'&' if '?' in path else '?'}{query}"


def settings_public_base() -> str:
    from django.conf import settings

    return settings.PUBLIC_BASE_URL.rstrip("/")
