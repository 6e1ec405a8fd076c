"""Machines in Chromium: pay by PIX, the provider approves, the page says "Machine
activated!" without a reload — also when the WebSocket was cut during the payment."""

import time

import pytest

pytestmark = pytest.mark.browser


def start_pix_payment(page, code: str) -> str:
    page.goto("/machines/")
    page.click(f"[data-code='{code}'] a")
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    page.locator("input[name=minutes]").first.check()
    page.click("button[value='pix']")
    page.wait_for_selector("#pix-modal[open]")
    assert page.locator("#pix-code").input_value().startswith("000201")
    assert page.locator(".waiting").is_visible()
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    return page.locator("#pix-modal").get_attribute("data-reference")


def provider_approves(stack, reference: str) -> float:
    """The fake provider approves and posts its signed notification; returns when the
    webhook has answered."""
    (payment_id,) = [
        pid for pid, p in stack.fake_mp.payments.items() if p["external_reference"] == reference
    ]
    result = stack.fake_mp.act(payment_id, "approve")
    assert result["delivered"] == 200
    return time.monotonic()


def test_pix_payment_activates_the_machine_live(stack, login, browser):
    controller = browser.new_page(base_url=stack.url)
    controller.goto(f"/machines/controller/?token={stack.device_token('lav-01')}")
    controller.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    assert controller.locator(".lamp").get_attribute("data-power") == "off"

    page = login(stack, "customer")
    reference = start_pix_payment(page, "lav-01")
    answered = provider_approves(stack, reference)
    page.wait_for_selector("#activated", timeout=2000)
    assert time.monotonic() - answered < 2.0
    assert page.locator("#activated").inner_text() == "Machine activated!"
    assert page.locator("#pix-modal").count() == 0
    countdown = page.locator(".countdown").inner_text()
    assert countdown.startswith(("29:", "30:")), countdown
    controller.wait_for_selector(".lamp[data-power='on']", timeout=2000)
    controller.close()


def test_activation_survives_a_cut_websocket(stack, login):
    page = login(stack, "customer")
    reference = start_pix_payment(page, "sec-01")
    page.evaluate("window.Confirma.events.stop()")
    provider_approves(stack, reference)
    time.sleep(0.5)
    assert page.locator("#activated").count() == 0  # the page cannot know yet
    page.evaluate("window.Confirma.events.resume()")
    resumed = time.monotonic()
    page.wait_for_selector("#activated", timeout=2000)
    assert time.monotonic() - resumed < 2.0
    # A reload shows the true state too.
    page.reload()
    assert page.locator("#activated").inner_text() == "Machine activated!"


def test_the_customer_sees_the_hold_and_cancels_the_pix(stack, login):
    page = login(stack, "customer")
    start_pix_payment(page, "mas-01")
    assert page.locator("#hold-until").inner_text().startswith("This machine is held for you")
    left = page.locator("#hold-until [data-countdown-to]").inner_text()
    assert left.startswith(("4:", "5:")), left

    page.click("#cancel-payment")
    page.wait_for_selector(".machine-state[data-state='choose']")
    assert page.locator("#pix-modal").count() == 0
    assert "Payment cancelled" in page.content()
    page.goto("/machines/")
    assert page.locator("[data-code='mas-01']").get_attribute("data-held") == "free"
