"""Provider webhooks are served (config/wsgi.py) without the page middleware: no session,
language, CSRF or frame headers on a machine-to-machine POST, the same answer as through
the full stack; pages still get all of it."""

import io

import pytest
from django.core.signals import request_started
from django.utils import translation

from config.wsgi import application
from payments.models import WebhookDelivery
from payments.providers.kiosk import kiosk_notification
from tests.payments.test_deliveries import _session

pytestmark = pytest.mark.django_db(transaction=True)


def _call(path: str, *, method: str = "GET", body: bytes = b"", headers=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_ACCEPT_LANGUAGE": "pt-BR",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = {k.lower(): v for k, v in response_headers}

    chunks = application(environ, start_response)
    answer["body"] = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return answer


def test_a_webhook_goes_through_the_lean_handler_and_is_stored(kiosk_secret, test_purpose):
    session = _session("lean")
    headers, body = kiosk_notification(
        secret=kiosk_secret,
        reference=session.reference,
        amount=str(session.amount),
        currency=session.currency,
    )
    answer = _call(
        "/webhooks/kiosk/",
        method="POST",
        body=body,
        headers={k: v for k, v in headers.items() if k != "content-type"},
    )
    assert answer["status"] == 200
    assert b'"accepted"' in answer["body"]
    assert WebhookDelivery.objects.filter(event_id=headers["webhook-id"]).exists()
    # None of the page middleware ran: no frame, language or cookie handling.
    for header in ("x-frame-options", "content-language", "set-cookie", "vary"):
        assert header not in answer["headers"], header
    # SecurityMiddleware still did.
    assert answer["headers"]["x-content-type-options"] == "nosniff"


def test_a_page_still_gets_the_full_middleware():
    answer = _call("/accounts/login/")
    assert answer["status"] == 200
    assert answer["headers"]["x-frame-options"] == "DENY"
    assert answer["headers"]["content-language"] == "pt-br"
    assert "csrftoken" in answer["headers"].get("set-cookie", "")


def test_a_refused_webhook_is_answered_the_same_way(kiosk_secret):
    answer = _call("/webhooks/kiosk/", method="POST", body=b"{}", headers={})
    assert answer["status"] == 401
    assert "x-frame-options" not in answer["headers"]


def test_a_webhook_runs_in_the_sites_language_whatever_the_thread_served_before(
    kiosk_secret, settings
):
    seen = []

    def record(**kwargs):
        seen.append(translation.get_language())

    request_started.connect(record)
    try:
        with translation.override("ru"):  # the page this thread served last
            _call("/webhooks/kiosk/", method="POST", body=b"{}", headers={})
    finally:
        request_started.disconnect(record)
    assert seen == [settings.LANGUAGE_CODE]
