"""Fault: the database connection drops while a webhook is being processed.

daphne reaches PostgreSQL through a TCP proxy of the test's own, which resets every
connection at the moment chosen: when the ticket is being inserted (mid-transaction), or
right after PostgreSQL committed but before the server heard so. The provider must get a
5xx, nothing may be half-applied, and its retry of the same signed notification must
apply the payment exactly once.
"""

import pytest
import requests

from payments.fakes.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

TICKET_INSERT = b'INSERT INTO "tickets_ticket"'


def post(stack, delivery) -> requests.Response:
    headers, body = delivery
    return requests.post(stack.url + "/webhooks/kiosk/", data=body, headers=headers, timeout=60)


def state(stack, reference: str) -> tuple:
    """(session status, fulfilled?, tickets, 'completed' audits, ticket.created events)."""
    return stack.sql(
        "SELECT s.status, s.fulfilled_at IS NOT NULL, "
        "(SELECT count(*) FROM tickets_ticket t WHERE t.payment_session_id = s.id), "
        "(SELECT count(*) FROM payments_paymentaudit a WHERE a.session_id = s.id "
        " AND a.action = 'completed'), "
        "(SELECT count(*) FROM notifications_event e WHERE e.type = 'ticket.created' "
        " AND e.audience = 'payment:' || s.reference) "
        "FROM payments_paymentsession s WHERE s.reference = %s",
        (reference,),
    )[0]


def test_connection_dropped_mid_webhook_is_all_or_nothing_and_the_retry_applies_once(
    make_stack, pg_proxy
):
    stack = make_stack(db_proxy=pg_proxy)
    stack.start_server()  # no worker: every connection the server makes is proxied
    first, second = stack.ticket_sessions(2, prefixes=("A",))
    deliveries = {
        s["reference"]: kiosk_notification(
            secret=KIOSK_SECRET,
            reference=s["reference"],
            amount=s["amount"],
            currency=s["currency"],
        )
        for s in (first, second)
    }
    responses = []

    # 1. Dropped while the ticket is being inserted: the transaction never commits.
    pg_proxy.arm(TICKET_INSERT)
    dropped = post(stack, deliveries[first["reference"]])
    assert pg_proxy.tripped.is_set(), "the connection was not cut"
    responses.append(dropped.status_code)
    assert 500 <= dropped.status_code < 600, dropped.text
    assert state(stack, first["reference"]) == ("pending", False, 0, 0, 0)
    assert stack.sql("SELECT count(*) FROM tickets_ticket") == [(0,)]

    retry = post(stack, deliveries[first["reference"]])  # the provider's retry, same bytes
    assert (retry.status_code, retry.json()["status"]) == (200, "processed")
    assert state(stack, first["reference"]) == ("completed", True, 1, 1, 1)

    # 2. Dropped after PostgreSQL committed, before the server heard back: applied once,
    #    and the retry is recognised as done.
    pg_proxy.arm(TICKET_INSERT, b"COMMIT", after_reply=True)
    lost_reply = post(stack, deliveries[second["reference"]])
    assert pg_proxy.tripped.is_set(), "the connection was not cut"
    responses.append(lost_reply.status_code)
    assert 500 <= lost_reply.status_code < 600, lost_reply.text
    assert state(stack, second["reference"]) == ("completed", True, 1, 1, 1)

    retry = post(stack, deliveries[second["reference"]])
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    assert state(stack, second["reference"]) == ("completed", True, 1, 1, 1)

    # No completed session without its ticket, no ticket without a completed session, and
    # the numbers have no gap (the rolled-back increment was not lost).
    assert stack.sql(
        "SELECT count(*) FROM payments_paymentsession s WHERE (s.status = 'completed') <> "
        "EXISTS (SELECT 1 FROM tickets_ticket t WHERE t.payment_session_id = s.id)"
    ) == [(0,)]
    assert stack.sql("SELECT number FROM tickets_ticket ORDER BY number") == [(1,), (2,)]
    # Every request was logged before processing, the dropped ones included.
    logged = stack.sql(
        "SELECT event_id, status FROM payments_webhookdelivery WHERE provider = 'kiosk' ORDER BY id"
    )
    assert len(logged) == 4
    assert [status for _, status in logged][1::2] == ["processed", "duplicate"]
    assert pg_proxy.cuts == 2
    print(f"\nprovider saw {responses} for the two dropped connections; logged {logged}")
