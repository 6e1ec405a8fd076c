"""Fault: screens open (a page load, a reconnect) while Redis, the channel layer, is down.

A server on a redis-server of the test's own, which is SIGKILLed before two screens open:
a cashier (session cookie) and a display board (signed token). Each connection must be
accepted, replay from the event log what it missed, tell the page that live pushes are
degraded, keep reading the log while Redis is away, and — once Redis is back — rejoin its
groups and say so, on the same connection. Every event reaches each screen exactly once.

Heartbeats are two minutes apart here, so nothing in this test arrives by the heartbeat's
catch-up: what the screens get comes from the replay, the degraded-mode log reads, or a
live push.
"""

import json
import re
import time
from pathlib import Path

import pytest

from notifications.tokens import audience_token_create
from tests.faults.harness import wait_until
from tests.faults.wsclient import ClientPool, EventClient

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

BOARD = "display:hall"


def _catch_ups(stack) -> int:
    """How many times the server sent a screen events from the log that no push brought."""
    log = Path(stack.log.name).read_text(errors="replace")
    return len(re.findall(r"events catch-up: \d+ missed pushes sent from the log", log))


def test_a_screen_opened_while_redis_is_down_is_served_from_the_log_and_goes_live_again(
    make_stack, own_redis
):
    stack = make_stack(
        redis=own_redis.url,
        env={
            "EVENTS_HEARTBEAT_SECONDS": "120",
            "EVENTS_DEGRADED_POLL_SECONDS": "1",
            "LOG_LEVEL": "INFO",
        },
    )
    stack.start_server()
    cookie = f"sessionid={stack.login('cashier').cookies['sessionid']}"
    cashier_id = stack.sql("SELECT id FROM auth_user WHERE username = 'cashier'")[0][0]
    since = stack.sql("SELECT coalesce(max(id), 0) FROM notifications_event")[0][0]

    def publish(audience: str, text: str) -> int:
        return stack.notify(audience, "staff.notice", json.dumps({"text": text}))

    before = [publish("role:cashier", "before the outage"), publish(BOARD, "board, before")]
    own_redis.kill()
    down = [
        publish("role:cashier", "Redis down, screens not open yet"),
        publish(BOARD, "board, Redis down"),
        publish("role:waiter", "for the waiters only"),
    ]

    cashier = EventClient(stack.url, since=since, cookie=cookie, name="cashier")
    board_token = audience_token_create(audiences=[BOARD], ttl_seconds=3600)
    board = EventClient(stack.url, since=since, token=board_token, name="board")
    clients = [cashier, board]
    audiences = {"cashier": ["role:cashier", f"user:{cashier_id}"], "board": [BOARD]}
    pool = ClientPool(clients)
    try:
        wait_until(
            lambda: pool.all_connected() or any(c.failed_connects for c in clients),
            timeout=30,
            what="both screens to connect",
        )
        for client in clients:
            assert client.failed_connects == 0, (
                f"{client.name}: connection refused while Redis is down ({client.refusals})"
            )
        wait_until(
            lambda: all(c.live_states == ["degraded"] for c in clients),
            timeout=10,
            what="the screens to be told that live pushes are degraded",
        )
        wait_until(
            lambda: (
                {before[0], down[0]} <= set(cashier.received)
                and {before[1], down[1]} <= set(board.received)
            ),
            timeout=10,
            what="the missed events replayed from the log",
        )

        # Still down: what is published now reaches the open screens from the log.
        during = [publish("role:cashier", "Redis still down"), publish(BOARD, "board, still down")]
        wait_until(
            lambda: during[0] in cashier.arrived_at and during[1] in board.arrived_at,
            timeout=10,
            what="events published during the outage to reach the open screens",
        )

        own_redis.start()
        wait_until(
            lambda: all(c.live_states == ["degraded", "ok"] for c in clients),
            timeout=30,
            what="the screens to be told that live pushes are back",
        )
        # Back on pushes: events arrive before the publishing process has even exited,
        # and none of them comes from the log.
        catch_ups = _catch_ups(stack)
        after = []
        for n in range(3):
            for audience, client in (("role:cashier", cashier), (BOARD, board)):
                event_id = publish(audience, f"live again {n}")
                returned = time.monotonic()
                wait_until(
                    lambda e=event_id, c=client: e in c.arrived_at,
                    timeout=10,
                    what=f"event {event_id} live on {client.name}",
                )
                assert client.arrived_at[event_id] <= returned + 1.0, (
                    f"{client.name}: event {event_id} came "
                    f"{client.arrived_at[event_id] - returned:.1f} s after it was published"
                )
                after.append(event_id)
        assert _catch_ups(stack) == catch_ups, "events after Redis returned came from the log"
        time.sleep(1.5)  # anything still to come would be a duplicate
    finally:
        pool.close()

    for client in clients:
        wanted = {
            row[0]
            for row in stack.sql(
                "SELECT id FROM notifications_event WHERE id > %s AND audience = ANY(%s)",
                (since, audiences[client.name]),
            )
        }
        assert len(wanted) == 6, (client.name, wanted)  # before, down, during, 3 after
        assert set(client.received) == wanted, client.name
        repeated = {i: n for i, n in client.frames_by_id.items() if n > 1}
        assert not repeated, f"{client.name}: the server sent events twice: {repeated}"
        assert client.connects == 1 and client.failed_connects == 0, client.name
        assert client.fatal is None and client.resyncs == 0, client.name
    assert down[2] not in cashier.received and down[2] not in board.received


@pytest.mark.browser
def test_a_page_opened_while_redis_is_down_says_reconnecting_and_goes_live_again(
    make_stack, own_redis, login
):
    stack = make_stack(redis=own_redis.url, env={"EVENTS_DEGRADED_POLL_SECONDS": "1"})
    stack.start_server()
    page = login(stack, "cashier")
    own_redis.kill()

    page.goto("/activity/")
    page.wait_for_selector("#events-status[data-state='reconnecting']", timeout=20000)
    assert page.locator("#events-status").inner_text() == "Reconnecting…"
    # Said by the open socket itself, not by a page whose connection keeps failing.
    assert page.evaluate("window.Confirma.events.socket.readyState") == 1  # WebSocket.OPEN

    during = stack.notify("role:cashier", "staff.notice", json.dumps({"text": "Redis down"}))
    page.wait_for_selector(f"[data-event-id='{during}']", timeout=10000)
    assert page.locator("#events-status").get_attribute("data-state") == "reconnecting"

    own_redis.start()
    page.wait_for_selector("#events-status[data-state='connected']", timeout=30000)
    assert page.locator("#events-status").inner_text() == "Live"
    live = stack.notify("role:cashier", "staff.notice", json.dumps({"text": "Redis back"}))
    page.wait_for_selector(f"[data-event-id='{live}']", timeout=5000)

    assert page.evaluate("window.Confirma.events.receivedIds") == [during, live]
    assert page.evaluate("window.Confirma.events.attempt") == 0  # never had to reconnect
