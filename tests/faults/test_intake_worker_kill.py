"""Fault: the webhook worker dies; the intake keeps answering, and nothing is lost.

A stack (daphne + the webhook worker) whose webhook worker is SIGKILLed. Kiosk payments
keep coming: each is answered "accepted" at once and stored, none processed. Some of them
are then left claimed, with a lease, as a worker killed in the middle of a batch leaves
them. A new webhook worker processes everything: the unclaimed deliveries at once, the
claimed ones only once their lease is over; every payment ends with exactly one ticket.
"""

import signal
import time
from collections import Counter

import pytest
import requests

from tests.faults.harness import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

PAYMENTS = 60
CLAIMED = 20  # the oldest deliveries: the dead worker's batch
DEAD_LEASE = 5  # seconds left of the dead worker's lease on them
ENV = {
    "WEBHOOK_LEASE_SECONDS": "3",
    "WEBHOOK_RETRY_BASE_SECONDS": "1",
    # How often an idle worker looks for claims whose lease ended (no NOTIFY for those).
    "WEBHOOK_WORKER_IDLE_SECONDS": "0.5",
}


def deliveries(stack) -> dict[int, tuple]:
    """id → (status, attempts, claimed_by, processed_at, session reference)."""
    return {
        row[0]: row[1:]
        for row in stack.sql(
            "SELECT d.id, d.status, d.attempts, d.claimed_by, d.processed_at, s.reference "
            "FROM payments_webhookdelivery d "
            "LEFT JOIN payments_paymentsession s ON s.id = d.session_id"
        )
    }


def test_a_killed_webhook_worker_loses_nothing_and_its_claims_return_after_the_lease(make_stack):
    stack = make_stack(env=ENV)
    stack.start_server()
    sessions = stack.ticket_sessions(PAYMENTS)
    references = [s["reference"] for s in sessions]

    dead = stack.webhooks
    assert dead.poll() is None, "the webhook worker is not running"
    stack.kill_webhook_worker()  # SIGKILL, by its pid
    assert dead.returncode == -signal.SIGKILL

    # Intake alone: every notification answered "accepted" at once, stored, not processed.
    answers = []
    with requests.Session() as http:
        for session in sessions:
            started = time.monotonic()
            response = stack.pay(http, session)
            answers.append((response.status_code, response.json(), time.monotonic() - started))
    slowest = max(seconds for *_, seconds in answers)
    assert Counter((code, answer["status"]) for code, answer, _ in answers) == {
        (200, "accepted"): PAYMENTS
    }
    assert slowest < 5, f"an answer took {slowest:.1f} s: the intake waited for something"
    ids = sorted(answer["delivery"] for _, answer, _ in answers)
    assert len(set(ids)) == PAYMENTS
    time.sleep(1.0)  # had anything been processing them, it would show now
    stored = deliveries(stack)
    assert sorted(stored) == ids
    assert {row[:3] for row in stored.values()} == {("received", 0, "")}
    assert stack.sql("SELECT count(*) FROM tickets_ticket") == [(0,)]
    assert stack.sql(
        "SELECT status, count(*) FROM payments_paymentsession WHERE reference = ANY(%s) GROUP BY 1",
        (references,),
    ) == [("pending", PAYMENTS)]

    # A worker killed mid-batch: it had claimed the oldest ones, with a lease, and did not
    # get to finish them.
    claimed = dict(
        stack.sql(
            "UPDATE payments_webhookdelivery SET attempts = attempts + 1, claimed_by = 'dead', "
            "next_attempt_at = now() + make_interval(secs => %s) "
            "WHERE id = ANY(%s) RETURNING id, next_attempt_at",
            (DEAD_LEASE, ids[:CLAIMED]),
        )
    )
    assert sorted(claimed) == ids[:CLAIMED]
    lease_end = min(claimed.values())

    # A new webhook worker (same environment: a short lease of its own).
    started = time.monotonic()
    worker = stack.start_webhook_worker()
    assert worker is not dead and worker.poll() is None
    free = ids[CLAIMED:]

    def free_done() -> bool:
        rows = deliveries(stack)
        return all(rows[i][0] != "received" for i in free)

    wait_until(free_done, timeout=60, interval=0.1, what="the unclaimed deliveries processed")
    free_after = time.monotonic() - started
    # One statement: the claimed ones as they are, and whether their lease is surely on.
    ((before_lease_end, untouched),) = stack.sql(
        "SELECT now() + interval '0.2 seconds' < %s, array_agg(DISTINCT "
        "(status = 'received' AND attempts = 1 AND claimed_by = 'dead')) "
        "FROM payments_webhookdelivery WHERE id = ANY(%s)",
        (lease_end, list(claimed)),
    )
    if before_lease_end:
        # Still leased: the new worker left them alone, and did not wait for them.
        assert untouched == [True], "a delivery another worker holds was taken"

    stack.wait_drained(timeout=60)
    drained_after = time.monotonic() - started
    assert worker.poll() is None, "the new webhook worker died"

    # Every delivery processed once, by the new worker, and linked to its session.
    final = deliveries(stack)
    assert sorted(final) == ids
    assert Counter(row[0] for row in final.values()) == {"processed": PAYMENTS}
    assert {row[2] for row in final.values()} == {""}
    assert {i: final[i][1] for i in ids} == {i: 2 if i in claimed else 1 for i in ids}
    assert sorted(row[4] for row in final.values()) == sorted(references)
    # The claimed ones only once their lease was over.
    early = {i: (final[i][3], claimed[i]) for i in claimed if final[i][3] < claimed[i]}
    assert not early, f"processed while another worker's lease held them: {early}"

    # Exactly one ticket per payment, each session completed and fulfilled once.
    rows = stack.sql(
        "SELECT s.status, s.fulfilled_at IS NOT NULL, count(t.id) FROM payments_paymentsession s "
        "LEFT JOIN tickets_ticket t ON t.payment_session_id = s.id "
        "WHERE s.reference = ANY(%s) GROUP BY s.id",
        (references,),
    )
    assert Counter(rows) == {("completed", True, 1): PAYMENTS}
    assert stack.sql("SELECT count(*) FROM tickets_ticket") == [(PAYMENTS,)]
    assert dict(
        stack.sql(
            # The payments of this test (the demo data has paid ones of its own).
            "SELECT a.action, count(*) FROM payments_paymentaudit a "
            "JOIN payments_paymentsession s ON s.id = a.session_id "
            "WHERE a.action IN ('completed', 'fulfilled') AND s.reference = ANY(%s) "
            "GROUP BY a.action",
            (references,),
        )
    ) == {"completed": PAYMENTS, "fulfilled": PAYMENTS}
    print(
        f"\nworker killed: {PAYMENTS} accepted (slowest answer {slowest:.2f} s); new worker "
        f"did the {len(free)} unclaimed in {free_after:.1f} s "
        f"({'before' if before_lease_end else 'after'} the dead worker's lease ended), "
        f"everything in {drained_after:.1f} s"
    )
