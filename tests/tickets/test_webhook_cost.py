"""What kiosk notifications cost in SQL: a guard against the intake or the confirmation
path growing round trips (docs/performance.md counts them; `make bench` measures the time)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import WebhookDelivery
from payments.services.deliveries import deliveries_run
from tests.tickets.conftest import kiosk_notification, kiosk_session
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

BATCH = 100


def _post(client, secret, session, *, msg_id=None):
    """Post a signed kiosk notification for `session` (its event id `msg_<reference>`
    unless `msg_id`); the intake's answer, nothing processed yet."""
    headers, body = kiosk_notification(
        secret=secret,
        reference=session.reference,
        amount=str(session.amount),
        currency=session.currency,
        msg_id=msg_id or f"msg_{session.reference}",
    )
    return client.post(
        "/webhooks/kiosk/",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "content-type"},
    )


def test_intake_of_a_notification_is_one_insert(client, kiosk_secret, service):
    session = kiosk_session(service)
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, kiosk_secret, session)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    statements = [q["sql"] for q in queries.captured_queries]
    # In a test the INSERT sits in a savepoint (the test's transaction); served, it is
    # the INSERT alone, committed by autocommit.
    writes = [s for s in statements if "SAVEPOINT" not in s]
    assert len(writes) == 1 and writes[0].startswith('INSERT INTO "payments_webhookdelivery"')


def test_a_batch_of_paid_tickets_costs_a_bounded_number_of_statements(
    client, kiosk_secret, service, printer
):
    warm = kiosk_session(service)
    _post(client, kiosk_secret, warm)
    deliveries_run()
    sessions = [kiosk_session(service) for _ in range(BATCH)]
    for session in sessions:
        assert _post(client, kiosk_secret, session).json()["status"] == "accepted"
    with CaptureQueriesContext(connection) as queries:
        report = deliveries_run(limit=BATCH)
    assert report.outcomes == {"processed": BATCH}
    assert Ticket.objects.filter(payment_session__in=sessions).count() == BATCH
    assert not WebhookDelivery.objects.filter(status="received").exists()
    statements = [q["sql"] for q in queries.captured_queries]
    # The claim (select + one update), the sessions locked and their payment ids read in
    # one statement each; the fulfilment of all hundred in one savepoint: the tickets that
    # exist already, the services, the service's counter, then tickets, ticket events,
    # the printer and print jobs in one statement each; the sessions saved in one UPDATE;
    # the batch's audit rows, events and deliveries' outcomes in one statement each.
    # Measured: 21 for the hundred (10.1 per notification before the fulfilment was
    # batched, 23 and four commits each when the request did the work).
    assert len(statements) <= 25, "\n".join(statements)
    locks = [s for s in statements if "FOR UPDATE" in s and "payments_paymentsession" in s]
    assert len(locks) == 1, locks
    for table in (
        "payments_paymentaudit",
        "notifications_event",
        "tickets_ticket",
        "tickets_ticketevent",
        "tickets_printjob",
    ):
        inserts = [s for s in statements if s.startswith(f'INSERT INTO "{table}"')]
        assert len(inserts) == 1, (table, len(inserts))
    saves = [s for s in statements if s.startswith('UPDATE "payments_paymentsession"')]
    assert len(saves) == 1, saves
    outcomes = [s for s in statements if s.startswith('UPDATE "payments_webhookdelivery"')]
    assert len(outcomes) == 2, outcomes  # the claim's lease, then the outcomes
    numbering = [s for s in statements if "tickets_ticketcounter" in s]
    assert len(numbering) == 1, numbering  # one service, one day: its hundred numbers at once
    numbers = Ticket.objects.filter(payment_session__in=sessions).values_list("number", flat=True)
    assert sorted(numbers) == list(range(2, BATCH + 2))  # after the warm-up's ticket 1
