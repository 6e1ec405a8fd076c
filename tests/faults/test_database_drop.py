"""Fault: the database connection drops while a webhook is taken in or processed.

daphne and the webhook worker reach PostgreSQL through a TCP proxy of the test's own (every
process of the stack gets the same DATABASE_URL), which resets every connection at once at
the moment chosen:

1. in the worker, while the ticket is being inserted (mid-transaction): the batch rolls
   back, nothing is half-applied, and the delivery is taken again (its failure recorded
   and retried, or its lease over) and applied exactly once;
2. in the worker, right after PostgreSQL committed the batch but before the worker heard
   so: applied once; the delivery's outcome committed with its effects, so it is not
   applied again;
3. at intake, before the delivery's INSERT reached PostgreSQL: the provider gets a 5xx and
   nothing is stored; its retry of the same bytes is accepted and applied once;
4. at intake, after the INSERT committed but before daphne heard so: a 5xx, yet the
   delivery is stored; the retry of the same bytes is answered "duplicate" with the stored
   delivery's id, and that delivery is applied once.
"""

import time

import pytest
import requests

from payments.providers.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET
from tests.faults.harness import settled

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

TICKET_INSERT = b'INSERT INTO "tickets_ticket"'
DELIVERY_INSERT = b'INSERT INTO "payments_webhookdelivery"'
# A claim whose worker lost its connection comes back after 3 s, a failure is retried 1 s
# later: the retries happen within the test's waits.
ENV = {"WEBHOOK_LEASE_SECONDS": "3", "WEBHOOK_RETRY_BASE_SECONDS": "1"}
UNTOUCHED = ("pending", False, 0, 0, 0)
APPLIED = ("completed", True, 1, 1, 1)


def post(stack, delivery) -> requests.Response:
    headers, body = delivery
    return requests.post(stack.url + "/webhooks/kiosk/", data=body, headers=headers, timeout=60)


def accepted(response: requests.Response) -> int:
    """The delivery id of an answer that says the notification was stored."""
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "accepted", answer
    return answer["delivery"]


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


def stored(stack, delivery) -> list[tuple]:
    """(id, status, attempts) of the deliveries stored for this notification's event id."""
    headers, _body = delivery
    return stack.sql(
        "SELECT id, status, attempts FROM payments_webhookdelivery "
        "WHERE provider = 'kiosk' AND event_id = %s ORDER BY id",
        (headers["webhook-id"],),
    )


def test_connection_dropped_at_intake_or_in_the_worker_applies_each_payment_once(
    make_stack, pg_proxy
):
    stack = make_stack(db_proxy=pg_proxy, env=ENV)
    stack.start_server()  # daphne and the webhook worker, both through the proxy
    sessions = stack.ticket_sessions(4, prefixes=("A",))
    references = [s["reference"] for s in sessions]
    deliveries = [
        kiosk_notification(
            secret=KIOSK_SECRET,
            reference=s["reference"],
            amount=s["amount"],
            currency=s["currency"],
        )
        for s in sessions
    ]
    mid_batch, lost_commit, intake_cut, intake_lost = zip(references, deliveries, strict=True)
    seen = {}

    # 1. The worker's batch is cut while it inserts the ticket: it never commits.
    reference, delivery = mid_batch
    pg_proxy.arm(TICKET_INSERT)
    delivery_id = accepted(post(stack, delivery))
    assert pg_proxy.tripped.wait(timeout=30), "the worker's ticket insert was not cut"
    assert state(stack, reference) == UNTOUCHED
    assert stack.sql("SELECT count(*) FROM tickets_ticket") == [(0,)]
    assert stack.delivery_status(delivery_id) in ("received", "failed")
    assert stack.wait_outcome(delivery_id, timeout=30) == "processed"
    assert state(stack, reference) == APPLIED
    ((_id, status, attempts),) = stored(stack, delivery)
    assert status == "processed"
    assert attempts >= 2, "processed without being taken again after the drop"
    seen["mid-batch"] = attempts

    # 2. The worker's batch committed; the worker never heard so. Applied once, and not
    #    applied again by whatever the worker does next; its recorded outcome stays
    #    "processed" (the test below).
    reference, delivery = lost_commit
    pg_proxy.arm(TICKET_INSERT, b"COMMIT", after_reply=True)
    lost_commit_id = accepted(post(stack, delivery))
    assert pg_proxy.tripped.wait(timeout=30), "the worker's commit reply was not cut"
    assert state(stack, reference) == APPLIED
    assert stack.wait_outcome(lost_commit_id, timeout=30) == "processed"

    # 3. Intake cut before the INSERT reached PostgreSQL: 5xx, nothing stored; the retry of
    #    the same bytes is stored and applied.
    reference, delivery = intake_cut
    pg_proxy.arm(DELIVERY_INSERT)
    dropped = post(stack, delivery)
    assert pg_proxy.tripped.is_set(), "the connection was not cut"
    assert 500 <= dropped.status_code < 600, dropped.text
    assert stored(stack, delivery) == []
    assert state(stack, reference) == UNTOUCHED
    delivery_id = accepted(post(stack, delivery))
    assert stack.wait_outcome(delivery_id, timeout=30) == "processed"
    assert state(stack, reference) == APPLIED
    seen["intake cut"] = dropped.status_code

    # 4. Intake's INSERT committed, daphne never heard so: 5xx, but stored; the retry is a
    #    duplicate of the stored delivery, which the worker applies once.
    reference, delivery = intake_lost
    pg_proxy.arm(DELIVERY_INSERT, after_reply=True)
    lost_reply = post(stack, delivery)
    assert pg_proxy.tripped.is_set(), "the connection was not cut"
    assert 500 <= lost_reply.status_code < 600, lost_reply.text
    ((delivery_id, _status, _attempts),) = stored(stack, delivery)
    retry = post(stack, delivery)
    assert (retry.status_code, retry.json()) == (
        200,
        {"status": "duplicate", "delivery": delivery_id},
    )
    assert stack.wait_outcome(delivery_id, timeout=30) == "processed"
    assert state(stack, reference) == APPLIED
    seen["intake lost reply"] = lost_reply.status_code

    # Nothing left to do, and nothing happens twice however long one waits for retries.
    stack.wait_drained(timeout=30)
    assert stack.webhooks.poll() is None, "the webhook worker died"
    assert [state(stack, r) for r in references] == [APPLIED] * 4
    # No completed session without its ticket, no ticket without a completed session, and
    # the numbers have no gap (the rolled-back increment was not lost).
    assert stack.sql(
        "SELECT count(*) FROM payments_paymentsession s WHERE s.purpose = 'ticket' "
        "AND (s.status = 'completed') <> "
        "EXISTS (SELECT 1 FROM tickets_ticket t WHERE t.payment_session_id = s.id)"
    ) == [(0,)]
    assert stack.sql("SELECT number FROM tickets_ticket ORDER BY number") == [
        (1,),
        (2,),
        (3,),
        (4,),
    ]
    # One stored delivery per notification, each processed; the one retry answered as a
    # duplicate was counted, not stored.
    logged = stack.sql(
        "SELECT id, event_id, status FROM payments_webhookdelivery WHERE provider = 'kiosk' "
        "ORDER BY id"
    )
    assert sorted(event for _, event, _ in logged) == sorted(h["webhook-id"] for h, _ in deliveries)
    outcomes = {id_: status for id_, _, status in logged}
    seen["lost commit"] = outcomes.pop(lost_commit_id)
    assert seen["lost commit"] in ("processed", "duplicate")
    assert set(outcomes.values()) == {"processed"}
    duplicates = settled(
        lambda: stack.sql(
            "SELECT sum(count) FROM payments_webhookrefusal WHERE reason = 'duplicate event'"
        ),
        [(1,)],
    )
    assert duplicates == [(1,)]
    assert pg_proxy.cuts == 4
    print(f"\nfour drops, each payment applied once: {seen}")


def test_a_worker_that_never_hears_its_commit_keeps_the_committed_outcome(make_stack, pg_proxy):
    """The outcome is committed with its effects: a worker that lost the COMMIT's reply
    must not overwrite it, and the delivery is not taken again."""
    stack = make_stack(db_proxy=pg_proxy, env=ENV)
    stack.start_server()
    (session,) = stack.ticket_sessions(1, prefixes=("A",))
    delivery = kiosk_notification(
        secret=KIOSK_SECRET,
        reference=session["reference"],
        amount=session["amount"],
        currency=session["currency"],
    )
    pg_proxy.arm(TICKET_INSERT, b"COMMIT", after_reply=True)
    delivery_id = accepted(post(stack, delivery))
    assert pg_proxy.tripped.wait(timeout=30), "the worker's commit reply was not cut"
    # Long enough for a recorded failure to be retried (1 s) or a lease to end (3 s).
    time.sleep(5)
    stack.wait_drained(timeout=30)
    assert state(stack, session["reference"]) == APPLIED
    assert stored(stack, delivery) == [(delivery_id, "processed", 1)]
