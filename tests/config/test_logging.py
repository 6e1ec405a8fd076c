import io
import json
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.logging import JsonFormatter, RedactSecretsFilter


def make_record(message, *args):
    return logging.LogRecord("confirma.test", logging.INFO, __file__, 1, message, args, None)


def test_secrets_and_documents_are_redacted(settings):
    settings.MERCADOPAGO_ACCESS_TOKEN = "APP_USR-1234567890-abcdef"
    settings.KIOSK_WEBHOOK_SECRET = "whsec_c2VjcmV0LXNlY3JldA=="
    record = make_record(
        "token %s secret %s cpf 123.456.789-09 bare 12345678909 card 4111 1111 1111 1111 "
        "header Bearer abcdefghijklmnop ref ps_8f3a",
        settings.MERCADOPAGO_ACCESS_TOKEN,
        settings.KIOSK_WEBHOOK_SECRET,
    )
    RedactSecretsFilter().filter(record)
    text = record.getMessage()
    for secret in (
        "APP_USR-1234567890",
        "c2VjcmV0",
        "123.456.789-09",
        "12345678909",
        "4111 1111",
        "abcdefghijklmnop",
    ):
        assert secret not in text
    assert "ref ps_8f3a" in text


def test_the_health_token_is_redacted_wherever_it_appears(settings):
    settings.HEALTH_TOKEN = "hx-" + uuid.uuid4().hex
    record = make_record("probe sent %s", settings.HEALTH_TOKEN)
    record.probe = {"header": settings.HEALTH_TOKEN}
    RedactSecretsFilter().filter(record)
    assert settings.HEALTH_TOKEN not in record.getMessage()
    assert settings.HEALTH_TOKEN not in json.dumps(record.probe)


def test_json_formatter_writes_one_object_per_line_with_extra_fields():
    record = make_record("webhook %s stored", 42)
    record.reference = "ps_abc"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "webhook 42 stored"
    assert data["level"] == "INFO"
    assert data["reference"] == "ps_abc"


# --- Every field of every record ---------------------------------------------------------

ACCESS_TOKEN = "APP_USR-9876543210-planted"
SECRETS = (
    ACCESS_TOKEN,
    "tok_live_4f9c2a7e1b",  # an opaque token, recognised by its field name only
    "sig_0a1b2c3d4e5f",  # a signature, by its field name
    "123.456.789-09",
    "98765432100",  # a bare CPF
    "4111 1111 1111 1111",
    "5500000000000004",
    "abcdefghijklmnop",  # after "Bearer"
    "hunter2-pass",
)


@pytest.fixture
def provider_token(settings):
    settings.MERCADOPAGO_ACCESS_TOKEN = ACCESS_TOKEN


def capture(formatter, *, with_filter=True):
    """A logger wired as settings.LOGGING wires the console handler, writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    if with_filter:
        handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger(f"confirma.test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, stream


def log_everywhere(logger, customer: dict) -> None:
    try:
        raise RuntimeError(f"provider refused token {ACCESS_TOKEN} for card 5500000000000004")
    except RuntimeError:
        logger.error(
            "payment ps_abc by %s paid with %s",
            "123.456.789-09",
            "4111 1111 1111 1111",
            exc_info=True,
            extra={
                "reference": "ps_abc",
                "attempt": 3,
                "token": "tok_live_4f9c2a7e1b",
                "cpf": "98765432100",
                "customer": customer,
                "headers": [{"Authorization": "Bearer abcdefghijklmnop", "Accept": "*/*"}],
                "paid_at": datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
                "amount": Decimal("40.00"),
            },
        )


def customer_details() -> dict:
    return {
        "name": "Maria",
        "document": "123.456.789-09",
        "cards": ["4111 1111 1111 1111", {"last4": "1111", "number": 5500000000000004}],
        "login": {"password": "hunter2-pass", "user": "maria"},
        "webhook": {"X-Signature": "sig_0a1b2c3d4e5f", "note": f"Bearer {ACCESS_TOKEN}"},
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


@pytest.mark.parametrize("with_filter", [True, False], ids=["filtered", "formatter-alone"])
def test_json_lines_carry_no_secret_in_any_field(provider_token, with_filter):
    logger, stream = capture(JsonFormatter(), with_filter=with_filter)
    customer = customer_details()
    log_everywhere(logger, customer)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert_no_secret(line)
    data = json.loads(line)
    # What is not secret survives, in its place and type.
    assert data["level"] == "ERROR" and data["logger"].startswith("confirma.test.")
    assert data["message"].startswith("payment ps_abc by ***.***.***-** paid with [redacted")
    assert data["reference"] == "ps_abc" and data["attempt"] == 3
    assert data["paid_at"] == "2026-12-05T12:00:00+00:00" and data["amount"] == "40.00"
    assert data["time"].startswith("20") and data["time"].endswith("+00:00")
    assert data["token"] == "[redacted]" and data["cpf"] == "[redacted]"
    assert data["customer"]["name"] == "Maria" and data["customer"]["login"]["user"] == "maria"
    assert data["customer"]["cards"][1]["last4"] == "1111"
    assert data["customer"]["login"]["password"] == "[redacted]"
    assert data["headers"] == [{"Authorization": "[redacted]", "Accept": "*/*"}]
    assert "RuntimeError: provider refused token" in data["exception"]
    assert "Traceback" in data["exception"]
    # The caller's own dictionary is not rewritten by logging it.
    assert customer == customer_details()


def test_the_readable_format_carries_no_secret(provider_token, settings):
    formatter = logging.Formatter(settings.LOGGING["formatters"]["text"]["format"])
    logger, stream = capture(formatter)
    log_everywhere(logger, customer_details())
    text = stream.getvalue()
    assert_no_secret(text)
    assert "payment ps_abc by ***.***.***-**" in text and "RuntimeError" in text


def test_stack_text_and_dictionary_messages_are_redacted(provider_token):
    logger, stream = capture(JsonFormatter())
    logger.warning({"event": "refund", "cpf": "98765432100", "note": "card 4111 1111 1111 1111"})
    logger.info("calling with %s", ACCESS_TOKEN, stack_info=True)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "refund" and first["cpf"] == "[redacted]"
    assert "4111" not in first["note"]
    assert ACCESS_TOKEN not in json.dumps(second) and "stack_info" in second


def test_arguments_that_do_not_fit_the_message_are_redacted_not_raised(provider_token):
    logger, stream = capture(JsonFormatter())
    logger.info("token %s %s", ACCESS_TOKEN)  # one argument short
    data = json.loads(stream.getvalue())
    assert ACCESS_TOKEN not in data["message"] and "[redacted" in data["message"]


def test_the_console_handler_redacts_and_formats_with_these_classes(settings):
    logging_config = settings.LOGGING
    assert logging_config["filters"]["redact"]["()"] == "core.logging.RedactSecretsFilter"
    assert logging_config["formatters"]["json"]["()"] == "core.logging.JsonFormatter"
    assert "redact" in logging_config["handlers"]["console"]["filters"]
