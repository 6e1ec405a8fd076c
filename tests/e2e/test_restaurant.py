"""Browsers for the waiter (on a phone), the kitchen and the cashier: take an order,
upload, reject, resubmit, approve — all live."""

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
    warning = waiter.locator(f"#rejected-{order_id}")
    assert "Monto ilegible" in warning.inner_text()
    # It stands out: a filled, bordered warning box, not a line of text among the others.
    assert warning.get_attribute("role") == "alert"
    # (Read in the page, as the live refreshes the rejection started may swap the element.)
    waiter.wait_for_function(
        "id => { const e = document.getElementById(id);"
        " return e && getComputedStyle(e).backgroundColor === 'rgb(254, 240, 199)'; }",
        arg=f"rejected-{order_id}",
        timeout=5000,
    )
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
    # …with the reason the first attempt was refused.
    earlier = cashier.locator(f"#earlier-rejections-{order_id}")
    assert "Monto ilegible" in earlier.inner_text()
    assert earlier.is_visible()


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser):
    """Log in on a phone-sized screen (the waiter's device)."""
    contexts = []

    def _login(stack, username: str, password: str = "confirma-demo"):
        context = browser.new_context(base_url=stack.url, locale="en-US", **PHONE)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("form.form button[type=submit]")
        page.wait_for_url(stack.url + "/")
        return page

    yield _login
    for context in contexts:
        context.close()


def fits_the_screen(page) -> bool:
    """Nothing wider than the phone (a mobile browser would widen the page to fit it)."""
    width = PHONE["viewport"]["width"]
    return page.evaluate(
        "w => window.innerWidth <= w && document.documentElement.scrollWidth <= w", width
    )


def test_waiter_takes_an_order_on_a_phone_and_the_kitchen_sees_it_live(stack, login, phone):
    kitchen = login(stack, "kitchen")
    kitchen.goto("/kitchen/")
    kitchen.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    on_board = kitchen.locator(".card.order").count()

    waiter = phone(stack, "waiter")
    waiter.goto("/waiter/")
    waiter.locator("#new-order").tap()
    waiter.wait_for_url(stack.url + "/waiter/new/")
    assert fits_the_screen(waiter)

    # Nothing chosen: told why, on the page, and nothing reaches the kitchen.
    waiter.locator(".entry-submit").tap()
    waiter.wait_for_selector("#order-errors")
    assert "Add at least one item or an amount." in waiter.locator("#order-errors").inner_text()
    assert "Choose a table." in waiter.locator(".field-error").first.inner_text()
    assert fits_the_screen(waiter)

    waiter.select_option("#id_table", label="Mesa 8")
    tacos = waiter.locator(".entry-item", has_text="Tacos al pastor")
    plus = tacos.locator("button[data-step='1']")
    box = plus.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44  # a thumb can hit it
    plus.tap()
    plus.tap()
    waiter.locator("#id_amount").fill("12,50")
    waiter.locator("#id_notes").fill("Sin cebolla")
    assert waiter.locator("#entry-total").inner_text() == "MX$202.50"  # as the server writes it
    submit = waiter.locator(".entry-submit")
    assert submit.is_visible()
    submit.tap()
    sent = time.monotonic()
    waiter.wait_for_url(stack.url + "/waiter/")
    assert "sent to the kitchen" in waiter.locator(".messages").inner_text()
    order_id = waiter.locator(".in-kitchen", has_text="Mesa 8").get_attribute("data-order")
    assert fits_the_screen(waiter)

    card = kitchen.locator(f".card.order[data-order='{order_id}']")
    card.wait_for(timeout=2000)
    assert time.monotonic() - sent < 3
    assert kitchen.locator(".card.order").count() == on_board + 1
    assert "2 × Tacos al pastor" in card.inner_text()
    assert "Sin cebolla" in card.inner_text()


def test_approval_shows_paid_to_the_waiter_live(stack, login, phone):
    waiter = phone(stack, "waiter")
    waiter.goto("/waiter/")
    waiter.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    waiting = int(waiter.locator("#waiting-summary").get_attribute("data-count"))
    assert waiting >= 1  # the demo has one order waiting for the cashier

    cashier = login(stack, "cashier")
    cashier.goto("/cashier/")
    proof = cashier.locator(".proof").first
    order_id = proof.get_attribute("data-order")
    proof.locator("button.approve").click()

    paid = waiter.locator(f"#paid-{order_id}")
    paid.wait_for(timeout=2000)
    assert "Paid" in paid.inner_text()
    summary = waiter.locator("#waiting-summary")
    assert int(summary.get_attribute("data-count")) == waiting - 1
    assert fits_the_screen(waiter)
