"""The kiosk flow in Chromium: pay at the terminal, get a ticket, be called, see it on
the display board — every screen live, no reloads."""

import pytest

pytestmark = pytest.mark.browser


def test_kiosk_ticket_is_printed_called_and_displayed(stack, login, browser):
    kiosk_token = stack.demo_line(r"kiosk page:\s+/kiosk/\?token=(\S+)$")
    display_token = stack.demo_line(r"display board:\s+/display/\?token=(\S+)$")

    display = browser.new_page(base_url=stack.url)
    display.goto(f"/display/?token={display_token}")
    display.wait_for_selector("#events-status[data-state='connected']", timeout=10000)

    operator = login(stack, "operator")
    operator.goto("/operator/")
    operator.fill("#desk", "2")
    operator.click("text=Set desk")
    operator.wait_for_selector("#events-status[data-state='connected']", timeout=10000)

    kiosk = browser.new_page(base_url=stack.url)
    kiosk.goto(f"/kiosk/?token={kiosk_token}")
    kiosk.click("[data-service='A']")
    kiosk.fill("#id_customer_name", "João")
    kiosk.click("button[value='card']")
    kiosk.wait_for_selector("#terminal-wait")
    kiosk.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    kiosk.click("button[value='approve']")  # the fake terminal's signed notification
    kiosk.wait_for_selector("#ticket-number", timeout=5000)
    code = kiosk.locator("#ticket-number").inner_text()
    assert code.startswith("A-")
    kiosk.wait_for_selector("#ticket-msg:has-text('Take your ticket')", timeout=10000)

    # The operator's queue shows it without a reload, and calls it.
    operator.wait_for_selector(f"tr[data-ticket='{code}'][data-status='in_queue']", timeout=5000)
    operator.click("#call-next")
    operator.wait_for_selector(f"#at-desks tr[data-ticket='{code}'][data-status='called']")

    display.wait_for_selector(f"li[data-ticket='{code}']", timeout=3000)
    assert "Desk 2" in display.locator(f"li[data-ticket='{code}']").inner_text()
    display.close()
    kiosk.close()


def test_the_operators_desk_is_kept_and_every_button_answers(stack, login, browser):
    kiosk_token = stack.demo_line(r"kiosk page:\s+/kiosk/\?token=(\S+)$")

    first = login(stack, "operator")
    first.goto("/operator/")
    first.fill("#desk", "5")
    first.click("text=Set desk")
    first.wait_for_selector(".messages li:has-text('You are at desk 5.')")

    # A fresh login starts at the same desk, and can call at once.
    operator = login(stack, "operator")
    operator.goto("/operator/")
    assert operator.input_value("#desk") == "5"
    operator.wait_for_selector("#events-status[data-state='connected']", timeout=10000)

    kiosk = browser.new_page(base_url=stack.url)
    kiosk.goto(f"/kiosk/?token={kiosk_token}")
    kiosk.click("[data-service='A']")
    kiosk.click("button[value='card']")
    kiosk.wait_for_selector("#terminal-wait")
    kiosk.click("button[value='approve']")
    kiosk.wait_for_selector("#ticket-number", timeout=5000)
    code = kiosk.locator("#ticket-number").inner_text()
    kiosk.close()

    operator.wait_for_selector(f"tr[data-ticket='{code}'][data-status='in_queue']", timeout=5000)
    operator.click("#call-next")
    operator.wait_for_selector(f".messages li:has-text('{code} called to desk 5.')")
    row = f"#at-desks tr[data-ticket='{code}']"
    operator.fill(f"{row} input[name='reason']", "Paper jammed or torn")
    operator.click(f"{row} .reprint button")
    operator.wait_for_selector(f".messages li:has-text('{code} sent to the printer again.')")
    operator.click(f"{row} button:has-text('Start')")
    operator.wait_for_selector(f".messages li:has-text('{code}: service started.')")
