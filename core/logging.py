"""Log formatting and redaction.

Development logs are readable lines; production logs are one JSON object per line, written
by python-json-logger. Every record passes through `RedactSecretsFilter`, and the JSON
formatter redacts once more whatever it is about to write, so configured secrets, bearer
tokens, signatures, card numbers and CPF numbers never reach a log line, whichever code
wrote it and wherever in the record they travel: the message and its arguments, `extra=`
fields (nested dictionaries and lists too), exception and stack text.
"""

import functools
import logging
import re
from urllib.parse import unquote

from django.conf import settings
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

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
    "HEALTH_TOKEN",
)
# Settings holding URLs with tokens inside (alert URLs): the URLs and their token-like parts.
_SECRET_URL_SETTINGS = ("ALERT_URLS", "ALERT_WEBHOOK_URL")
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
# A field whose name says it holds a credential or a document number is masked whole,
# whatever its value looks like (`extra={"token": …}`, a "Signature" header…).
_SECRET_FIELD = re.compile(
    r"(?i)(token|secret|passw|api_?key|access_?key|private_?key|signature|authori[sz]ation"
    r"|cookie|credential|cpf|cnpj|card_?number|cvv|cvc)"
)
REDACTED = "[redacted]"
# Deeper than this, a structure in a log record is written as redacted text.
_MAX_DEPTH = 8


_URL = re.compile(r"^[A-Za-z0-9+.-]+://(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.S)
_HOST_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$|^localhost$|^\[[0-9A-Fa-f:.]+\]$")


def _token_like(part: str) -> bool:
    # Long enough, and with a digit or too long to be a word: "services" or "alerts" stay.
    return len(part) >= 6 and (any(c.isdigit() for c in part) or len(part) >= 16)


def url_secrets(url: str) -> set[str]:
    """`url` and its parts that may be tokens: the password, and every part of the user
    name, host (unless it is a host name or an address), path, query and fragment that
    looks like a token. Services quote these parts on their own (Discord's webhook token
    in https://discord.com/api/webhooks/… for discord://id/token)."""
    url = url.strip()
    secrets = {url} if len(url) >= 6 else set()
    match = _URL.match(url)
    if not match:
        return secrets
    userinfo, _, hostport = match["netloc"].rpartition("@")
    user, _, password = userinfo.partition(":")
    if len(password) >= 4:
        secrets.add(password)
    host = hostport.rsplit(":", 1)[0] if hostport.rsplit(":", 1)[-1].isdigit() else hostport
    if not _HOST_NAME.match(host):
        # Not a host name: Slack, Discord and Telegram put tokens here.
        secrets.update(part for part in {hostport, *hostport.split(":")} if len(part) >= 6)
    parts = [user, *re.split(r"[/?&=#;,]+", match["rest"])]
    for part in parts:
        for form in {part, unquote(part)}:
            if _token_like(form):
                secrets.add(form)
    return secrets


@functools.lru_cache(maxsize=16)
def _url_secrets_longest_first(urls: tuple[str, ...]) -> tuple[str, ...]:
    found = set().union(*(url_secrets(url) for url in urls)) if urls else set()
    return tuple(sorted(found, key=len, reverse=True))


def _secret_urls(settings) -> tuple[str, ...]:
    urls = []
    for name in _SECRET_URL_SETTINGS:
        value = getattr(settings, name, "")
        urls += [value] if isinstance(value, str) else list(value or ())
    return tuple(url for url in urls if url)


def redact(text: str) -> str:
    """Return `text` with every known secret and sensitive number masked."""
    if not settings.configured:
        return text
    for name in _SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if value and len(value) >= 6 and value in text:
            text = text.replace(value, REDACTED)
    for value in _url_secrets_longest_first(_secret_urls(settings)):
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value, *, to_text=None, _depth: int = 0):
    """Return a redacted copy of `value`: strings masked, numbers that read as a card or a
    CPF masked, dictionaries, lists, tuples and sets redacted item by item (a key that
    names a secret masks its whole value). Other objects are returned unchanged, or, given
    `to_text`, turned into what it returns for them and redacted in turn. `value` itself is
    never modified."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        text = str(value)
        return value if redact(text) == text else redact(text)
    if _depth >= _MAX_DEPTH:
        return redact(str(value))
    deeper = {"to_text": to_text, "_depth": _depth + 1}
    if isinstance(value, dict):
        return {
            redact_value(key, **deeper): (
                REDACTED
                if isinstance(key, str) and _SECRET_FIELD.search(key) and item not in (None, "")
                else redact_value(item, **deeper)
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item, **deeper) for item in value]
    if to_text is not None:
        return redact_value(to_text(value), **deeper)
    return value


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactSecretsFilter(logging.Filter):
    """Redact a record in place before any handler formats it: the message (with its
    arguments), the exception and stack text, and every `extra=` field. Fields are
    replaced by redacted copies, so the caller's own dictionaries are left untouched;
    objects that are not text, numbers or containers are left for the formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        self._redact_message(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRIBUTES or key.startswith("_"):
                continue
            if _SECRET_FIELD.search(key) and value not in (None, ""):
                setattr(record, key, REDACTED)
            else:
                setattr(record, key, redact_value(value))
        return True

    @staticmethod
    def _redact_message(record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict) and not record.args:
            record.msg = redact_value(record.msg)
            return
        try:
            message = record.getMessage()
        except Exception:
            # Arguments that do not fit the message: keep both, readable and redacted,
            # rather than let the handler print them raw in its error report.
            message = f"{record.msg} {record.args!r}"
            record.msg, record.args = redact(message), None
            return
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, any `extra` fields, and
    the exception text under `exception`. Everything written is redacted here as well,
    including the text of objects the encoder has to turn into strings, so a handler
    configured without `RedactSecretsFilter` still leaks nothing."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", ["levelname", "name", "message"])
        kwargs.setdefault(
            "rename_fields",
            {"levelname": "level", "name": "logger", "exc_info": "exception"},
        )
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)
        self._encoder = JsonEncoder()

    def process_log_record(self, log_data):
        return redact_value(log_data, to_text=self._encoder.default)
