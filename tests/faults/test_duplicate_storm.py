"""Fault: a storm of duplicate notifications, in parallel, over HTTP to a real server.

1 000 kiosk payments, each notification delivered 5 times (the terminal retries), all
5 000 shuffled and posted by 16 concurrent senders to daphne on PostgreSQL + Redis. The
intake stores the first copy of each event (its Standard Webhooks `webhook-id`) and
answers "accepted"; every other copy is refused by the unique event id and answered
"duplicate" with the stored delivery's id. The webhook worker then confirms what was
stored, in batches: exactly one ticket per payment.
"""

import contextlib
import json
import random
import threading
import time
from collections import Counter, deque
from http.client import HTTPConnection, HTTPException
from urllib.parse import urlsplit

import pytest

from payments.providers.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET
from tests.faults.harness import settled

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

PAYMENTS = 1000
COPIES = 5
SENDERS = 16


def send_all(url: str, deliveries: list, *, senders: int, deadline: float) -> list:
    """Post every delivery once, from `senders` threads, each on a keep-alive connection
    (http.client: the senders must not eat the CPU the server needs); returns
    (event id, status or exception name, answer, seconds) per delivery."""
    target = urlsplit(url)
    pending, results, lock = deque(deliveries), [], threading.Lock()

    def sender():
        http = None
        while time.monotonic() < deadline:
            try:
                headers, body = pending.popleft()
            except IndexError:
                break
            started, answer = time.monotonic(), None
            try:
                http = http or HTTPConnection(target.hostname, target.port, timeout=60)
                http.request("POST", target.path, body=body, headers=headers)
                response = http.getresponse()
                content = response.read()
                status = response.status
                with contextlib.suppress(ValueError):
                    answer = json.loads(content)
            except (OSError, HTTPException) as exc:
                status = exc.__class__.__name__
                if http:
                    http.close()
                http = None
            with lock:
                results.append((headers["webhook-id"], status, answer, time.monotonic() - started))
        if http:
            http.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    assert not any(t.is_alive() for t in threads), "a sender is still running"
    return results


def test_duplicate_storm_fulfils_each_payment_exactly_once(make_stack):
    # Persistent database connections, as a production server would keep them.
    stack = make_stack(env={"CONN_MAX_AGE": "60"})
    stack.start_server()  # daphne and the webhook worker; no task worker: no printing
    sessions = stack.ticket_sessions(PAYMENTS)
    since = stack.sql("SELECT coalesce(max(id), 0) FROM notifications_event")[0][0]

    deliveries = []
    for session in sessions:
        delivery = kiosk_notification(
            secret=KIOSK_SECRET,
            reference=session["reference"],
            amount=session["amount"],
            currency=session["currency"],
        )
        deliveries += [delivery] * COPIES
    random.Random(PAYMENTS).shuffle(deliveries)

    started = time.monotonic()
    results = send_all(
        stack.url + "/webhooks/kiosk/", deliveries, senders=SENDERS, deadline=started + 190
    )
    elapsed = time.monotonic() - started
    statuses = Counter(status for _, status, _, _ in results)
    slowest = max(seconds for *_, seconds in results)
    print(
        f"\nstorm: {len(results)} deliveries in {elapsed:.1f} s "
        f"({len(results) / elapsed:.0f}/s), slowest {slowest:.2f} s, statuses {dict(statuses)}"
    )
    assert len(results) == PAYMENTS * COPIES
    assert statuses == {200: PAYMENTS * COPIES}  # no 5xx, no refused connection

    # At intake: one "accepted" per event; its other copies "duplicate" of that delivery.
    answers: dict[str, list[dict]] = {}
    for event, _status, answer, _seconds in results:
        answers.setdefault(event, []).append(answer)
    assert len(answers) == PAYMENTS
    for event, got in answers.items():
        kinds = Counter(answer and answer.get("status") for answer in got)
        assert kinds == {"accepted": 1, "duplicate": COPIES - 1}, (event, got)
        assert len({answer["delivery"] for answer in got}) == 1, (event, got)
    stored = stack.sql("SELECT event_id, id FROM payments_webhookdelivery WHERE provider = 'kiosk'")
    assert dict(stored) == {event: got[0]["delivery"] for event, got in answers.items()}

    # The worker confirms what was stored, in batches; wait until nothing is left.
    drain_started = time.monotonic()
    stack.wait_drained(timeout=180)
    print(f"worker done {time.monotonic() - drain_started:.1f} s after the last answer")

    # Exactly one completed, fulfilled session and one ticket per payment.
    references = [s["reference"] for s in sessions]
    rows = stack.sql(
        "SELECT s.status, s.fulfilled_at IS NOT NULL, count(t.id) FROM payments_paymentsession s "
        "LEFT JOIN tickets_ticket t ON t.payment_session_id = s.id "
        "WHERE s.reference = ANY(%s) GROUP BY s.id",
        (references,),
    )
    assert len(rows) == PAYMENTS
    assert Counter(rows) == {("completed", True, 1): PAYMENTS}
    assert stack.sql("SELECT count(*) FROM tickets_ticket")[0][0] == PAYMENTS
    audits = dict(
        stack.sql(
            # The payments of this test (the demo data has paid ones of its own).
            "SELECT a.action, count(*) FROM payments_paymentaudit a "
            "JOIN payments_paymentsession s ON s.id = a.session_id "
            "WHERE a.action IN ('completed', 'fulfilled') AND s.reference = ANY(%s) "
            "GROUP BY a.action",
            (references,),
        )
    )
    assert audits == {"completed": PAYMENTS, "fulfilled": PAYMENTS}

    # Numbered 1..n without gaps or duplicates for each service and day.
    numbers: dict[tuple, list[int]] = {}
    for service, day, number in stack.sql(
        "SELECT service_id, day, number FROM tickets_ticket ORDER BY number"
    ):
        numbers.setdefault((service, day), []).append(number)
    per_service = Counter(s["service"] for s in sessions)
    assert sum(len(n) for n in numbers.values()) == PAYMENTS
    for (service, _day), got in numbers.items():
        assert got == list(range(1, len(got) + 1)), f"service {service}: gaps or duplicates"
    for service, count in per_service.items():
        assert sum(len(n) for (s, _), n in numbers.items() if s == service) == count

    # One stored delivery per event, processed once (by the worker, at its first attempt);
    # the other copies only counted as refused duplicates.
    logged = stack.sql(
        "SELECT status, response_status, signature_valid, attempts, count(*) "
        "FROM payments_webhookdelivery WHERE provider = 'kiosk' GROUP BY 1, 2, 3, 4"
    )
    assert Counter({row[:4]: row[4] for row in logged}) == {("processed", 200, True, 1): PAYMENTS}
    processed_per_event = stack.sql(
        "SELECT count(DISTINCT event_id), count(*) FROM payments_webhookdelivery "
        "WHERE provider = 'kiosk' AND status = 'processed'"
    )
    assert processed_per_event == [(PAYMENTS, PAYMENTS)]
    # Repeats are counted in memory and written within WEBHOOK_REFUSAL_FLUSH_SECONDS.
    duplicates = settled(
        lambda: stack.sql(
            "SELECT sum(count) FROM payments_webhookrefusal "
            "WHERE provider = 'kiosk' AND reason = 'duplicate event'"
        ),
        [(PAYMENTS * (COPIES - 1),)],
    )
    assert duplicates == [(PAYMENTS * (COPIES - 1),)]
    assert stack.sql(
        "SELECT count(*) FROM payments_webhookrefusal WHERE reason <> 'duplicate event'"
    ) == [(0,)]

    # One "ticket.created" event per payment, for the operators and for the customer.
    events = stack.sql(
        "SELECT audience LIKE 'payment:%%', count(*) FROM notifications_event "
        "WHERE id > %s AND type = 'ticket.created' GROUP BY 1",
        (since,),
    )
    assert dict(events) == {False: PAYMENTS, True: PAYMENTS}
