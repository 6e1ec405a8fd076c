"""A page using the events module, in Chromium, against a real daphne."""

import json
import time

import pytest

pytestmark = pytest.mark.browser


def wait_state(page, state: str, timeout_ms: int = 20000) -> None:
    page.wait_for_selector(f"#events-status[data-state='{state}']", timeout=timeout_ms)


def received_ids(page) -> list[int]:
    return page.evaluate("window.Confirma.events.receivedIds")


def test_event_from_another_process_reaches_the_page_and_survives_a_restart(stack, login):
    page = login(stack, "cashier")
    page.goto("/activity/")
    wait_state(page, "connected")

    # `manage.py notify` is another process; the event is committed when it exits.
    text = "Caixa 2 <b>fechado</b> — ñandú"
    event_id = stack.notify("role:cashier", "staff.notice", json.dumps({"text": text}))
    published = time.monotonic()
    page.wait_for_selector(f"[data-event-id='{event_id}']", timeout=2000)
    assert time.monotonic() - published < 2.0
    item = page.locator(f"[data-event-id='{event_id}'] .event-text")
    assert item.inner_text() == text  # shown as text, never as markup
    assert received_ids(page) == [event_id]

    # The server goes away: the page says so, events keep being written meanwhile.
    stack.stop()
    wait_state(page, "reconnecting", timeout_ms=10000)
    assert page.locator("#events-status").inner_text() == "Reconnecting…"
    missed = [
        stack.notify("role:cashier", "staff.notice", json.dumps({"text": f"missed {n}"}))
        for n in range(2)
    ]
    other = stack.notify("role:waiter", "staff.notice", json.dumps({"text": "not for you"}))
    stack.start()

    wait_state(page, "connected")
    for missed_id in missed:
        page.wait_for_selector(f"[data-event-id='{missed_id}']", timeout=5000)
    live = stack.notify("role:cashier", "staff.notice", json.dumps({"text": "after"}))
    page.wait_for_selector(f"[data-event-id='{live}']", timeout=2000)

    ids = received_ids(page)
    assert ids == [event_id, *missed, live]
    assert len(ids) == len(set(ids))
    assert page.locator(f"[data-event-id='{other}']").count() == 0
