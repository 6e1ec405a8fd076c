"""The demo's payment flow in Chromium: top up by PIX, simulate the provider, see it live."""

import re

import pytest

pytestmark = pytest.mark.browser


def test_topup_by_pix_confirmed_through_the_signed_webhook(stack, login, tmp_path):
    page = login(stack, "customer")
    page.goto("/payments/")
    start = float(page.locator(".balance").get_attribute("data-balance"))
    page.fill("#id_amount", "15.00")
    page.click("form.inline button[type=submit]")
    page.wait_for_url(re.compile(r".*/payments/ps_[^/]+/$"))
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    assert page.locator("#payment-state").inner_text() == "Waiting for payment…"
    code = page.locator("#pix-code").input_value()
    assert code.startswith("000201") and "br.gov.bcb.pix" in code
    assert page.locator("img.qr").is_visible()

    page.click("button[value='approve']")  # → fake provider → signed webhook → event
    page.wait_for_selector("#payment-state:has-text('Payment confirmed')", timeout=5000)

    page.goto("/payments/")
    assert float(page.locator(".balance").get_attribute("data-balance")) == start + 15
    reference = stack.fake_mp.payments
    assert any(p["status"] == "approved" for p in reference.values())
