"""Fault: Redis (the channel layer) dies for 10 s under load, and comes back empty.

A server and a worker on a redis-server of the test's own; 20 WebSocket clients that
resume like static/js/events.js (10 operators by session cookie, 10 kiosk screens by
signed token); webhooks sent steadily, answered at intake and confirmed by the webhook
worker. Redis is SIGKILLed — everything it held, channel groups included, is lost — and
started again on the same port 10 s later. Pushes published meanwhile are gone; every
screen must still end with every event, each once.
"""

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from notifications.tokens import audience_token_create
from payments.providers.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET
from tests.faults.harness import wait_until
from tests.faults.wsclient import ClientPool, EventClient

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

CLIENTS = 20
RATE = 8  # webhooks per second
BEFORE, OUTAGE, AFTER = 3.0, 10.0, 3.0


class Sender:
    """Posts one kiosk notification every 1/RATE s, in order, until stopped."""

    def __init__(self, url: str, sessions: list[dict]) -> None:
        self.url, self.sessions = url, list(sessions)
        # (reference, HTTP status, seconds, the intake's answer)
        self.results: list[tuple[str, object, float, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            next_at = time.monotonic()
            for session in self.sessions:
                if self._stop.is_set():
                    return
                headers, body = kiosk_notification(
                    secret=KIOSK_SECRET,
                    reference=session["reference"],
                    amount=session["amount"],
                    currency=session["currency"],
                )
                started = time.monotonic()
                answer = ""
                try:
                    response = http.post(self.url, data=body, headers=headers, timeout=30)
                    status = response.status_code
                    answer = response.json().get("status", "") if response.ok else ""
                except (requests.RequestException, ValueError) as exc:
                    status = exc.__class__.__name__
                elapsed = time.monotonic() - started
                self.results.append((session["reference"], status, elapsed, answer))
                next_at += 1 / RATE
                time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


def test_redis_killed_for_ten_seconds_loses_no_event_and_repeats_none(make_stack, own_redis):
    stack = make_stack(redis=own_redis.url, env={"EVENTS_HEARTBEAT_SECONDS": "2"})
    stack.start_worker()  # prints on the demo (dummy) printer: "ticket.printed" events
    stack.start_server()
    planned = int(RATE * (BEFORE + OUTAGE + AFTER)) + 20
    sessions = stack.ticket_sessions(planned)
    since = stack.sql("SELECT coalesce(max(id), 0) FROM notifications_event")[0][0]

    # Half the screens are operators (session cookie), half kiosk screens following a share
    # of the payments each (signed token); `audiences` is what each may see.
    operator_cookie = f"sessionid={stack.login('operator').cookies['sessionid']}"
    operator_id = stack.sql("SELECT id FROM auth_user WHERE username = 'operator'")[0][0]
    clients, audiences = [], {}
    for n in range(CLIENTS):
        if n % 2 == 0:
            client = EventClient(stack.url, since=since, cookie=operator_cookie, name=f"op{n}")
            audiences[client.name] = ["role:operator", f"user:{operator_id}"]
        else:
            mine = [f"payment:{s['reference']}" for s in sessions[n // 2 :: CLIENTS // 2]]
            token = audience_token_create(audiences=mine, ttl_seconds=3600)
            client = EventClient(stack.url, since=since, token=token, name=f"kiosk{n}")
            audiences[client.name] = mine
        clients.append(client)
    pool = ClientPool(clients)
    try:
        wait_until(pool.all_connected, timeout=30, what="20 WebSocket clients connected")
        sender = Sender(stack.url + "/webhooks/kiosk/", sessions)
        sender.thread.start()
        time.sleep(BEFORE)

        own_redis.kill()
        killed_at = time.monotonic()
        sent_before_kill = len(sender.results)
        time.sleep(OUTAGE)
        own_redis.start()
        outage = time.monotonic() - killed_at
        sent_during = len(sender.results) - sent_before_kill
        time.sleep(AFTER)
        sender.stop()
        sent = [ref for ref, *_ in sender.results]

        # The database is the source of truth: everything was answered, stored and applied
        # (the intake does not need Redis; the worker confirms what it stored).
        statuses = Counter((status, answer) for _, status, _, answer in sender.results)
        slowest = max(seconds for _, _, seconds, _ in sender.results)
        assert statuses == {(200, "accepted"): len(sent)}, statuses
        assert sent_during >= 10, f"only {sent_during} webhooks during the outage"
        stack.wait_drained(timeout=60)
        assert stack.sql("SELECT status, count(*) FROM payments_webhookdelivery GROUP BY 1") == [
            ("processed", len(sent))
        ]
        assert stack.sql(
            "SELECT count(*), count(DISTINCT payment_session_id) FROM tickets_ticket"
        ) == [(len(sent), len(sent))]
        wait_until(
            lambda: (
                stack.sql("SELECT count(*) FROM tickets_ticket WHERE status = 'in_queue'")[0][0]
                == len(sent)
            ),
            timeout=60,
            what="every ticket printed by the worker",
        )

        # What each screen must end with: every event of its audiences since it started.
        wanted = {
            name: {
                row[0]
                for row in stack.sql(
                    "SELECT id FROM notifications_event WHERE id > %s AND audience = ANY(%s)",
                    (since, mine),
                )
            }
            for name, mine in audiences.items()
        }
        assert all(wanted.values())
        started = time.monotonic()
        wait_until(
            lambda: all(set(c.received) >= wanted[c.name] for c in clients),
            timeout=60,
            what="every client to catch up",
        )
        caught_up = time.monotonic() - started
        time.sleep(1.0)  # anything still to come would be a duplicate
    finally:
        pool.close()

    print(
        f"\nredis outage {outage:.1f} s: {len(sent)} webhooks ({sent_during} during it), "
        f"slowest answer {slowest:.2f} s; events per client "
        f"{sorted(len(v) for v in wanted.values())}; all caught up {caught_up:.1f} s after the "
        f"last ticket printed; reconnects {[c.connects - 1 for c in clients]}"
    )
    for client in clients:
        assert client.fatal is None and client.resyncs == 0, client.name
        assert set(client.received) == wanted[client.name], client.name
        assert len(client.received) == len(set(client.received)), client.name
        repeated = {i: n for i, n in client.frames_by_id.items() if n > 1}
        assert not repeated, f"{client.name}: the server sent events twice: {repeated}"
    # What was pushed while Redis was away is lost (pub/sub keeps nothing): the screens got
    # it from the log, by their connection's catch-up or by reconnecting with ?since=.
    log = Path(stack.log.name).read_text(errors="replace")
    assert "event push failed" in log, "no push failed: the outage did not bite"
