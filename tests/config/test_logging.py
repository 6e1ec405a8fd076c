import json
import logging

from config.logging import JsonFormatter, RedactSecretsFilter


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


def test_json_formatter_writes_one_object_per_line_with_extra_fields():
    record = make_record("webhook %s stored", 42)
    record.reference = "ps_abc"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "webhook 42 stored"
    assert data["level"] == "INFO"
    assert data["reference"] == "ps_abc"
