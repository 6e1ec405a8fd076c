"""Subscriptions in Chromium: checkout through the Click fake's page, and the return page
turning to "active" live when Click's callbacks arrive."""

import time

import pytest

pytestmark = pytest.mark.browser


def subscribe_with_click(page, plan: str) -> str:
    page.goto("/billing/")
    form = page.locator(f"form.plan[data-plan='{plan}']")
    form.locator("input[value='click']").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pay")  # Click's payment page (the fake)
    assert "/click/services/pay" in page.url
    return page.url.split("transaction_param=")[1].split("&")[0]


def test_click_checkout_and_live_return_page(stack, login):
    page = login(stack, "customer")
    reference = subscribe_with_click(page, "basic-uzs")

    # The customer comes back before Click has called us: the page waits…
    page.goto(f"/billing/return/?merchant_trans_id={reference}")
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    assert page.locator("[data-state='waiting']").count() == 1

    # …and turns to "active" by itself once Click's prepare and complete have arrived.
    answers = stack.fake_billing.click_pay(reference, "49000.00")
    answered = time.monotonic()
    assert answers["prepare"]["error"] == 0 and answers["complete"]["error"] == 0
    page.wait_for_selector("#subscription-active", timeout=3000)
    assert time.monotonic() - answered < 3.0
    assert page.locator("#return-state [data-state='active']").count() == 1

    page.goto("/billing/subscription/")
    assert page.locator("#subscription-status").inner_text() == "Active"
    assert page.locator("tr[data-type='activated']").count() == 1


def test_paying_on_the_click_page_lands_on_an_active_return_page(stack, login):
    page = login(stack, "customer")
    subscribe_with_click(page, "pro-uzs")
    page.click("#pay")
    page.wait_for_url("**/billing/return/**", timeout=10000)
    page.wait_for_selector("#subscription-active", timeout=5000)
    assert "Pro" in page.locator("#return-state").inner_text()


def test_unknown_return_lists_recent_payments(stack, login):
    page = login(stack, "customer")
    page.goto("/billing/return/")
    assert page.locator("#return-unknown").is_visible()


def test_the_price_after_a_coupon_shows_before_paying(stack, login):
    page = login(stack, "customer")
    page.goto("/billing/")
    form = page.locator("form.plan[data-plan='pro-uzs']")
    assert form.locator(".quote").get_attribute("data-total") == "99000.00"
    form.locator("input[name=coupon]").fill("DEMO10")
    page.wait_for_selector("#quote-pro-uzs[data-total='89100.00']", timeout=5000)
    assert "You pay UZS89,100.00" in form.locator(".quote").inner_text()
    form.locator("input[name=coupon]").fill("NOPE")
    page.wait_for_selector("#quote-pro-uzs[data-total='99000.00'] .coupon-error", timeout=5000)
    assert "Unknown coupon code." in form.locator(".coupon-error").inner_text()
    assert page.url.endswith("/billing/")  # still choosing: nothing was paid or opened


def test_a_partial_crypto_payment_is_explained_on_the_return_page(stack, login):
    page = login(stack, "customer")
    page.goto("/billing/")
    form = page.locator("form.plan[data-plan='pro-usd']")
    form.locator("input[value='nowpayments']").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pay-partial")  # NOWPayments' invoice page (the fake)
    page.click("#pay-partial")
    page.wait_for_url("**/billing/return/**", timeout=10000)
    held = page.wait_for_selector("#partial-payment[data-partial='held']", timeout=5000)
    text = held.inner_text()
    assert "We received 0.0000317 BTC of the 0.0000635 BTC" in text
    assert "0.0000318 BTC are missing." in text and "Please do not pay again." in text
    # The status line is a second live update of the page: it may follow a moment later.
    page.wait_for_function(
        "() => document.querySelector('#return-status').innerText"
        ".includes('Part of your payment arrived.')",
        timeout=5000,
    )
