"""Log formatting and redaction.

Development logs are readable lines; production logs are one JSON object per line. Every
record passes through `RedactSecretsFilter`, so configured secrets, bearer tokens, card
numbers and CPF numbers never reach a log line, whichever code wrote it.
"""

import json
import logging
import re
from datetime import UTC, datetime

_SECRET_SETTINGS = (
    "SECRET_KEY",
    "MERCADOPAGO_ACCESS_TOKEN",
    "MERCADOPAGO_WEBHOOK_SECRET",
    "CLICK_SECRET_KEY",
    "NOWPAYMENTS_API_KEY",
    "NOWPAYMENTS_IPN_SECRET",
    "COINBASE_COMMERCE_API_KEY",
    "COINBASE_COMMERCE_WEBHOOK_SECRET",
    "KIOSK_WEBHOOK_SECRET",
    "ALERT_WEBHOOK_URL",
)
_PATTERNS = [
    # Bearer / token credentials in headers or URLs.
    (re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (re.compile(r"\b(?:APP_USR|TEST)-[A-Za-z0-9-]{10,}"), "[redacted-token]"),
    # CPF (formatted or bare 11 digits) and card numbers (13-19 digits, spaces or dashes).
    (re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b"), "***.***.***-**"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[redacted-number]"),
    (re.compile(r"\b\d{11}\b"), "[redacted-number]"),
]


def redact(text: str) -> str:
    """Return `text` with every known secret and sensitive number masked."""
    from django.conf import settings

    if not settings.configured:
        return text
    for name in _SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if value and len(value) >= 6 and value in text:
            text = text.replace(value, "[redacted]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    _RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = record.exc_text or redact(self.formatException(record.exc_info))
        return json.dumps(data, default=str)
