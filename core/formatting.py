"""Money and times written for the reader: in the active language's conventions (Babel's
CLDR data) and, for times, in the business's time zone (BUSINESS_TIME_ZONE).

Only what people read goes through here; stored values, API output and `data-*`
attributes stay machine-readable ("20.00", ISO 8601 in UTC)."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal, is_currency
from django.conf import settings
from django.utils import timezone, translation

# Django language codes (settings.LANGUAGES) → Babel locales.
BABEL_LOCALES = {"en": "en", "pt-br": "pt_BR", "es": "es", "uz": "uz_Latn", "ru": "ru"}
FALLBACK_LOCALE = "en"


def babel_locale(language: str | None = None) -> str:
    """The Babel locale for a Django language code (the active language by default)."""
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
    if language in BABEL_LOCALES:
        return BABEL_LOCALES[language]
    candidate = translation.to_locale(language)
    try:
        Locale.parse(candidate)
    except (UnknownLocaleError, ValueError):
        return FALLBACK_LOCALE
    return candidate


def _decimal(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def money_text(amount, currency: str = "", *, language: str | None = None) -> str:
    """`amount` with its currency as the reader writes it: "R$ 20,00" in Portuguese,
    "R$20.00" in English. Never drops digits (a crypto amount keeps all of its decimals).
    A value that is not a number comes back unchanged, followed by the currency."""
    number = _decimal(amount)
    currency = (currency or "").strip().upper()
    if number is None:
        return f"{amount} {currency}".strip() if amount not in (None, "") else ""
    locale = babel_locale(language)
    if is_currency(currency, locale):
        return format_currency(number, currency, locale=locale, decimal_quantization=False)
    # Not an ISO 4217 currency (a crypto coin, say): the number, then the code.
    text = format_decimal(number, format="#,##0.00", locale=locale, decimal_quantization=False)
    return f"{text} {currency}".strip()


def business_zone() -> ZoneInfo:
    return ZoneInfo(settings.BUSINESS_TIME_ZONE)


def _aware(value) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, ZoneInfo(settings.TIME_ZONE))
    return value


def business_time_text(value, *, language: str | None = None) -> str:
    """A moment (aware datetime or ISO 8601 text) in BUSINESS_TIME_ZONE, in the reader's
    conventions, with the zone named: "6 de dez. de 2026 09:41:05 (America/Sao_Paulo)".
    Text that is not a moment comes back unchanged."""
    moment = _aware(value)
    if moment is None:
        return "" if value is None else str(value)
    zone = business_zone()
    text = format_datetime(moment, "medium", tzinfo=zone, locale=babel_locale(language))
    return f"{text} ({zone.key})"
