"""Provider adapters: each verifies its signature, parses its message into one common
`Notification`, and (where the provider has an API) creates and looks up payments.

Every provider is a `ProviderAdapter` (payments/providers/base.py), registered under its
name; `provider_get` finds it. The webhook intake and its workers
(`payments.services.intake`, `payments.services.deliveries`) drive them; nothing here
touches the database.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import import_module
from urllib.parse import urlencode

from django.conf import settings

from core.text import text_storable


class SignatureInvalid(Exception):
    """The message is not from the provider (bad, missing or stale signature)."""


class MalformedPayload(Exception):
    """The message is signed (or unsigned by design) but cannot be understood."""


class ProviderRefusal(Exception):
    """A synchronous protocol refuses the notification before it is applied, with the
    provider's own error code (Click's −2, −4, −6…)."""

    def __init__(self, code: int, detail: str = "", *, status: str = "rejected") -> None:
        super().__init__(detail or str(code))
        self.code = code
        self.status = status  # how the delivery is kept (a DeliveryStatus value)


class PaymentState(StrEnum):
    APPROVED = "approved"
    PROCESSING = "processing"
    # Money arrived short of the price (crypto): held for staff, never fulfilled as is.
    PARTIALLY_PAID = "partially_paid"
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
    endpoint: str = ""  # the URL under /webhooks/ it came to (Click: click/prepare…)

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
    # The message only names a payment: its state comes from the provider's API
    # (`adapter.fetch(provider_payment_id)`), asked by a worker outside any lock.
    needs_fetch: bool = False
    # The provider started a new attempt for the still-open session: remember its payment
    # id in place of the one it had (Click's prepare).
    replaces_payment_id: bool = False


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


_ADAPTERS: dict[str, object] = {}
# The modules that register an adapter each (imported on first use: they import this one).
ADAPTER_MODULES = ("mercadopago", "kiosk", "click", "nowpayments", "coinbase", "wallet")


def provider_register(adapter) -> None:
    """Register `adapter` (a ProviderAdapter) under its name; called by its module."""
    _ADAPTERS[adapter.name] = adapter


def _load() -> None:
    if len(_ADAPTERS) < len(ADAPTER_MODULES):
        for module in ADAPTER_MODULES:
            import_module(f"payments.providers.{module}")


def provider_get(name: str):
    """The adapter registered as `name`, or None."""
    _load()
    return _ADAPTERS.get(name)


def own_money(name: str) -> bool:
    """True for Confirma's own money (wallet credit): paid at once, refunded as credit."""
    adapter = provider_get(name)
    return bool(adapter and adapter.own_money)


def providers_all() -> list:
    _load()
    return list(_ADAPTERS.values())


def return_url(session, param: str = "reference", **extra: str) -> str:
    """Where the provider sends the customer back: the purpose's return page (or the
    payment's own page) with the reference under the name this provider uses."""
    base = settings_public_base()
    path = session.metadata.get("return_path") or f"/payments/{session.reference}/"
    query = urlencode({param: session.reference, **extra})
    return f"{base}{path}{'&' if '?' in path else '?'}{query}"


def settings_public_base() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/")
