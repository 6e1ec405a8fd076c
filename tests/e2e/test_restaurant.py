"""Two browsers, a waiter and a cashier: upload, reject, resubmit — all live."""

import time

import pytest

from tests.orders.conftest import png_bytes

pytestmark = pytest.mark.browser


def test_proof_rejected_and_resubmitted_live(stack, login, tmp_path):
    receipt = tmp_path / "comprobante.png"
    receipt.write_bytes(png_bytes(size=(240, 160)))

    cashier = login(stack, "cashier")
    cashier.goto("/cashier/")
    cashier.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    before = cashier.locator(".proof").count()

    waiter = login(stack, "waiter")
    waiter.goto("/waiter/")
    waiter.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    waiter.wait_for_load_state("networkidle")
    card = waiter.locator("#waiter-list .card.order").first
    order_id = card.get_attribute("data-order")
    card.locator("input[type=file]").set_input_files(str(receipt))
    card.locator("button[type=submit]").click()
    uploaded = time.monotonic()

    cashier.wait_for_selector(f".proof[data-order='{order_id}']", timeout=2000)
    assert time.monotonic() - uploaded < 2.5
    assert cashier.locator(".proof").count() == before + 1
    assert cashier.locator(f".proof[data-order='{order_id}'] .resubmitted").count() == 0
    assert cashier.locator("#badge-cashier").inner_text() == str(before + 1)
    assert cashier.locator("#new-proof-cue").is_visible()

    # The cashier rejects; the waiter sees why, without reloading.
    waiter.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    proof = cashier.locator(f".proof[data-order='{order_id}']")
    proof.locator("input[name=reason]").fill("Monto ilegible")
    proof.locator("button.reject").click()
    waiter.wait_for_selector(f"#rejected-{order_id}", timeout=2000)
    assert "Monto ilegible" in waiter.locator(f"#rejected-{order_id}").inner_text()
    retry = waiter.locator(f".card.order[data-order='{order_id}'] button.retry")
    assert retry.inner_text() == "Retry payment"

    # The waiter resubmits; the cashier sees it marked as such. (Let the refreshes that the
    # rejection's several events started settle, as a person picking a photo would.)
    waiter.wait_for_load_state("networkidle")
    waiter.locator(f".card.order[data-order='{order_id}'] input[type=file]").set_input_files(
        str(receipt)
    )
    retry.click()
    cashier.wait_for_selector(f".proof[data-order='{order_id}'] .resubmitted", timeout=2000)
    assert "2" in cashier.locator(f".proof[data-order='{order_id}'] .resubmitted").inner_text()
