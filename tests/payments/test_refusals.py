"""A flood of refused webhook requests costs no database write per request: the first of
each provider, reason, address and hour is written at once (and logged), its repeats are
added up in memory and written together — every one of them counted."""

import logging
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import WebhookRefusal
from payments.services import refusals
from tests.payments.conftest import KIOSK_SECRET

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fresh_counts(settings):
    settings.KIOSK_WEBHOOK_SECRET = KIOSK_SECRET
    settings.TRUSTED_PROXY_COUNT = 1
    refusals.refusals_flush()
    refusals._repeats = refusals._Repeats()
    yield
    refusals.refusals_flush()
    refusals._repeats = refusals._Repeats()


def _forged(client, address: str):
    response = client.post(
        "/webhooks/kiosk/",
        data=b'{"forged": true}',
        content_type="application/json",
        headers={"webhook-id": "msg_x", "x-forwarded-for": address},
    )
    assert response.status_code == 401
    return response


def _count(address: str) -> int:
    return sum(WebhookRefusal.objects.filter(remote_addr=address).values_list("count", flat=True))


def test_refusals_are_counted_in_memory_and_written_together(client, settings, caplog):
    settings.WEBHOOK_REFUSAL_FLUSH_SECONDS = 60  # only refusals_flush() writes them here
    caplog.set_level(logging.WARNING)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(31):
            _forged(client, "203.0.113.9")
    assert not [q for q in queries.captured_queries if "webhookrefusal" in q["sql"]]
    assert _count("203.0.113.9") == 0
    assert len([r for r in caplog.records if "webhook refused" in r.getMessage()]) == 1

    refusals.refusals_flush()
    (row,) = WebhookRefusal.objects.filter(remote_addr="203.0.113.9")
    assert row.count == 31
    assert row.last_at >= row.first_at and row.body_size == len(b'{"forged": true}')
    assert len(row.body_sha256) == 64 and bytes(row.body_head) == b'{"forged": true}'

    _forged(client, "203.0.113.9")  # later in the hour: counted on the same row, not logged
    refusals.refusals_flush()
    row.refresh_from_db()
    assert row.count == 32
    assert len([r for r in caplog.records if "webhook refused" in r.getMessage()]) == 1


def test_a_flood_from_new_addresses_is_logged_in_a_few_lines(client, settings, caplog):
    settings.WEBHOOK_REFUSAL_FLUSH_SECONDS = 60
    caplog.set_level(logging.WARNING)
    for i in range(refusals.LOG_PER_MINUTE + 15):
        _forged(client, f"198.18.0.{i + 1}")
    refusals.refusals_flush()
    lines = [r.getMessage() for r in caplog.records if "webhook refused" in r.getMessage()]
    if len(lines) == refusals.LOG_PER_MINUTE + 1:  # the flood, then one line summing it up
        assert "15 more from new addresses" in lines[-1]
    else:  # a minute turned meanwhile: the limit started again
        assert len(lines) <= refusals.LOG_PER_MINUTE * 2 + 1
    assert WebhookRefusal.objects.filter(remote_addr__startswith="198.18.0.").count() == 35


def test_the_repeats_are_written_by_the_process_itself_within_the_interval(client, settings):
    settings.WEBHOOK_REFUSAL_FLUSH_SECONDS = 0.2
    for _ in range(12):
        _forged(client, "198.51.100.4")
    _forged(client, "198.51.100.5")
    deadline = time.monotonic() + 10
    while (_count("198.51.100.4"), _count("198.51.100.5")) != (12, 1):
        assert time.monotonic() < deadline, (_count("198.51.100.4"), _count("198.51.100.5"))
        time.sleep(0.05)
    assert WebhookRefusal.objects.count() == 2


def test_with_no_interval_every_refusal_is_written_at_once(client, settings):
    settings.WEBHOOK_REFUSAL_FLUSH_SECONDS = 0
    for expected in (1, 2, 3):
        _forged(client, "192.0.2.44")
        assert _count("192.0.2.44") == expected
