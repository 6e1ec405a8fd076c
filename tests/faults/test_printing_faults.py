"""Faults in printing, through the real worker process (daphne takes the webhooks in, the
webhook worker confirms them and creates the tickets).

- the worker is SIGKILLed while a slow printer holds a job: after a restart and the
  periodic sweep, every job ends printed, none stays queued or sending;
- the printer is switched off: the job ends in PRINT_ERROR and staff are alerted; once it
  is back, the operator's reprint prints the ticket.
"""

import time
from collections import Counter

import pytest
import requests

from tests.faults.harness import FaultStack, SlowPrinter, wait_until
from tests.faults.wsclient import ClientPool, EventClient

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

PRINT_ENV = {
    "PRINT_TIMEOUT_SECONDS": "1.0",
    "PRINT_MAX_ATTEMPTS": "2",
    "PRINT_RETRY_BASE_SECONDS": "0.5",
    "EVENTS_HEARTBEAT_SECONDS": "2",
}
LEASE = 3 * 1.0 + 10  # tickets.services.print_lease_seconds() with PRINT_ENV


@pytest.fixture(scope="module")
def stack(stack_template, tmp_path_factory):
    stack = FaultStack(tmp_path_factory.mktemp("printing"), template=stack_template, env=PRINT_ENV)
    stack.start_server()
    yield stack
    stack.close()


def job_states(stack) -> Counter:
    return Counter(dict(stack.sql("SELECT status, count(*) FROM tickets_printjob GROUP BY 1")))


def test_worker_killed_mid_job_every_job_ends_printed(stack):
    printer = SlowPrinter(delay=0.6).on()
    stack.point_printers_at(printer.url)
    sessions = stack.ticket_sessions(8)
    stack.start_worker()
    with requests.Session() as http:
        for session in sessions:
            answer = stack.pay(http, session)
            assert (answer.status_code, answer.json()["status"]) == (200, "accepted")

    # Kill the worker while the printer holds the third job (bytes in, answer not yet out).
    wait_until(lambda: len(printer.jobs) >= 3 and printer.holding.is_set(), timeout=60,
               interval=0.01, what="the third job in flight")  # fmt: skip
    stack.kill_worker()
    killed_at = time.monotonic()
    states = job_states(stack)
    assert states["sending"] == 1 and states["printed"] >= 2, states
    assert states["printed"] + states["queued"] == 7, states
    (stuck_id, stuck_reference), = stack.sql(
        "SELECT j.id, s.reference FROM tickets_printjob j JOIN tickets_ticket t ON t.id = "
        "j.ticket_id JOIN payments_paymentsession s ON s.id = t.payment_session_id "
        "WHERE j.status = 'sending'"
    )  # fmt: skip

    def attempt_age() -> float:
        return stack.sql(
            "SELECT extract(epoch FROM now() - sent_at)::float FROM tickets_printjob "
            "WHERE id = %s", (stuck_id,)
        )[0][0]  # fmt: skip

    # The periodic sweep leaves it alone while its attempt may still be going on.
    age_before = attempt_age()
    swept = stack.manage("recover_print_jobs")
    if attempt_age() < LEASE:
        assert "0 re-queued, 0 failed" in swept
    elif age_before > LEASE:  # a very slow machine: the lease was over already
        assert "1 re-queued, 0 failed" in swept

    # A new worker prints what was queued; the job the dead one held stays "sending"...
    stack.start_worker()
    wait_until(lambda: job_states(stack)["printed"] == 7, timeout=60, what="7 jobs printed")
    assert job_states(stack)["sending"] == 1 or "1 re-queued" in swept

    # ...until its lease is over: then the sweep (cron, run_periodic) takes it back, once.
    if "1 re-queued" not in swept:
        wait_until(lambda: attempt_age() > LEASE, timeout=LEASE + 5, what="the lease's end")
        assert "1 re-queued, 0 failed" in stack.manage("recover_print_jobs")
    wait_until(lambda: job_states(stack) == {"printed": 8}, timeout=30, what="8 jobs printed")
    recovered_after = time.monotonic() - killed_at

    tickets = Counter(dict(stack.sql("SELECT status, count(*) FROM tickets_ticket GROUP BY 1")))
    assert tickets == {"in_queue": 8}
    events = stack.sql(
        "SELECT data FROM tickets_ticketevent WHERE type = 'print_recovered' ORDER BY id"
    )
    assert [(e["job"], e["was"], e["outcome"]) for (e,) in events] == [
        (stuck_id, "sending", "queued")
    ]
    # At least once: every ticket came out; only the one taken back may have come out twice.
    copies = Counter()
    for data in printer.jobs:
        for session in sessions:
            if session["reference"].encode() in data:
                copies[session["reference"]] += 1
    assert set(copies) == {s["reference"] for s in sessions}
    assert {ref for ref, n in copies.items() if n > 1} <= {stuck_reference}
    assert sum(copies.values()) == len(printer.jobs) <= 9
    print(
        f"\nworker killed holding job {stuck_id}: all 8 printed {recovered_after:.1f} s after "
        f"the kill (lease {LEASE:.0f} s); printer got {len(printer.jobs)} jobs, copies of the "
        f"abandoned one: {copies[stuck_reference]}"
    )
    printer.off()


def test_printer_offline_print_error_alert_then_operator_reprint(stack):
    printer = SlowPrinter()  # its port is closed: the printer is off
    stack.point_printers_at(printer.url)
    if stack.worker is None or stack.worker.poll() is not None:
        stack.start_worker()
    (session,) = stack.ticket_sessions(1)
    since = stack.sql("SELECT coalesce(max(id), 0) FROM notifications_event")[0][0]
    operator = stack.login("operator")
    staff = EventClient(stack.url, since=since, cookie=f"sessionid={operator.cookies['sessionid']}")
    pool = ClientPool([staff])
    try:
        wait_until(pool.all_connected, timeout=30, what="the operator's screen connected")
        with requests.Session() as http:
            assert stack.pay_processed(http, session) == "processed"
        ticket_id, code = stack.sql(
            "SELECT t.id, t.number FROM tickets_ticket t JOIN payments_paymentsession s "
            "ON s.id = t.payment_session_id WHERE s.reference = %s",
            (session["reference"],),
        )[0]

        def ticket_status():
            return stack.sql("SELECT status FROM tickets_ticket WHERE id = %s", (ticket_id,))[0][0]

        started = time.monotonic()
        wait_until(lambda: ticket_status() == "print_error", timeout=30, what="PRINT_ERROR")
        failed_after = time.monotonic() - started
        ((status, attempts, error),) = stack.sql(
            "SELECT status, attempts, last_error FROM tickets_printjob WHERE ticket_id = %s",
            (ticket_id,),
        )
        assert (status, attempts) == ("failed", 2)
        assert "cannot reach the printer" in error
        alerts = stack.sql(
            "SELECT code, context->>'ticket', resolved_at FROM notifications_alert "
            "WHERE code = 'ticket.print_error'"
        )
        assert alerts == [("ticket.print_error", str(ticket_id), None)]
        raised = stack.sql(
            "SELECT id, audience FROM notifications_event "
            "WHERE id > %s AND type = 'alert.raised' ORDER BY id",
            (since,),
        )
        assert sorted(a for _, a in raised) == ["role:operator", "role:staff"]
        # The operator's screen hears of it live.
        operator_alert = next(i for i, a in raised if a == "role:operator")
        wait_until(lambda: operator_alert in staff.seen, timeout=10, what="the alert on screen")
        assert printer.connections == 0

        # The printer is back; the operator presses "Reprint" on the panel.
        printer.on()
        operator.get(stack.url + "/operator/", timeout=30)
        reprint = operator.post(
            f"{stack.url}/operator/ticket/{ticket_id}/reprint/",
            data={"csrfmiddlewaretoken": operator.cookies["csrftoken"], "reason": "Printer off"},
            timeout=30,
            allow_redirects=False,
        )
        assert reprint.status_code == 302
        wait_until(lambda: ticket_status() == "in_queue", timeout=30, what="reprinted")
    finally:
        pool.close()
    jobs = stack.sql(
        "SELECT status, requested_by_id IS NOT NULL FROM tickets_printjob "
        "WHERE ticket_id = %s ORDER BY id",
        (ticket_id,),
    )
    assert jobs == [("failed", False), ("printed", True)]
    assert stack.sql(
        "SELECT count(*) FROM tickets_ticketevent WHERE ticket_id = %s AND type = 'reprint'",
        (ticket_id,),
    ) == [(1,)]
    (printed,) = printer.jobs
    assert session["reference"].encode() in printed  # the QR code of this payment
    assert f"-{code:03d}".encode() in printed
    assert printed.endswith(b"\x1dV\x00")  # and cut
    print(f"\nprinter off: PRINT_ERROR and alert {failed_after:.1f} s after the payment")
    printer.off()
