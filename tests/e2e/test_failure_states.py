"""When things go wrong, in Chromium at a laptop's (1280 px) and a phone's (390 px) width:
each role's page says what happened, why, and what to do next, with a button for it, and
fits the screen. A rejected machine PIX, a failed crypto payment, a kiosk payment the
terminal declined, a receipt the cashier rejected, a printer that fails (and the staff
alert it raises, labelled, not coded), and the 403 page."""

import os
import re

import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # One stack for the module (the outcomes do not depend on the database engine), whose
    # printers give up after one attempt so a print error shows in a second.
    saved = {key: os.environ.get(key) for key in ("PRINT_MAX_ATTEMPTS", "PRINT_TIMEOUT_SECONDS")}
    os.environ.update(PRINT_MAX_ATTEMPTS="1", PRINT_TIMEOUT_SECONDS="0.5")
    try:
        running = Stack("sqlite-memory", tmp_path_factory.mktemp("failures"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    running.start()
    yield running
    running.close()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def live(page) -> None:
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)


@SIZES
def test_a_rejected_machine_pix_says_why_and_offers_pix_again(stack, open_as, viewport):
    page = open_as("customer", viewport)
    page.goto("/machines/sec-01/" if viewport is PHONE else "/machines/mas-01/")
    live(page)
    page.locator("input[name=minutes]").first.check()
    page.click("button[value='pix']")
    page.wait_for_selector("#pix-modal[open]")
    live(page)
    reference = page.locator("#pix-modal").get_attribute("data-reference")
    (payment_id,) = [
        pid for pid, p in stack.fake_mp.payments.items() if p["external_reference"] == reference
    ]
    assert stack.fake_mp.act(payment_id, "reject")["delivered"] == 200
    page.wait_for_selector("#machine-outcome #pix-failed", timeout=5000)
    outcome = page.locator("#machine-outcome")
    assert outcome.get_attribute("data-tone") == "failure"
    assert "rejected the payment" in page.locator("#payment-reason").inner_text()
    assert "No money was taken" in outcome.inner_text()
    again = page.locator("button[name=method][value=pix]")
    assert again.is_visible() and again.inner_text() == "Try again with PIX"
    assert fits(page)


@SIZES
def test_a_failed_crypto_payment_says_why_and_offers_to_try_again(stack, open_as, viewport):
    page = open_as("customer", viewport)
    page.goto("/billing/")
    form = page.locator("form.plan[data-plan='pro-usd']")
    form.locator("input[value='nowpayments']").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#pay-partial")  # NOWPayments' invoice page (the fake)
    invoice_id = page.locator("input[name=iid]").first.get_attribute("value")
    invoice = stack.fake_billing.invoices[invoice_id]
    assert stack.fake_billing.nowpayments_ipn(invoice_id, "failed").status_code == 200
    page.goto(invoice["success_url"])
    page.wait_for_selector("#return-outcome #try-again", timeout=10000)
    assert "This payment was not completed." in page.locator("#return-status").inner_text()
    assert "rejected the payment" in page.locator("#payment-reason").inner_text()
    assert page.locator("#try-again").get_attribute("href") == "/billing/"
    assert "tone-failure" in page.locator("#return-outcome").get_attribute("class")
    assert fits(page)


@SIZES
def test_a_declined_kiosk_payment_offers_to_pay_again_for_the_same_service(
    stack, open_as, viewport
):
    token = stack.demo_line(r"kiosk page:\s+/kiosk/\?token=(\S+)$")
    kiosk = open_as(None, viewport)
    kiosk.goto(f"/kiosk/?token={token}")
    kiosk.click("[data-service='A']")
    service_url = kiosk.url
    kiosk.click("button[value='card']")
    kiosk.wait_for_selector("#terminal-wait")
    live(kiosk)
    kiosk.click("button[value='reject']")  # the fake terminal declines
    kiosk.wait_for_selector("#payment-closed", timeout=10000)
    assert "This payment was rejected" in kiosk.locator("#payment-closed").inner_text()
    assert kiosk.locator("#payment-reason").inner_text()
    assert "No money was taken" in kiosk.locator("#payment-outcome").inner_text()
    again = kiosk.locator("#try-again")
    assert again.is_visible() and fits(kiosk)
    again.click()
    kiosk.wait_for_url(service_url)
    assert kiosk.locator("button[value='card']").is_visible()


def test_a_rejected_receipt_reaches_the_waiters_phone_with_its_reason(stack, open_as):
    cashier = open_as("cashier", DESKTOP)
    cashier.goto("/cashier/")
    cashier.wait_for_selector(".proof")
    assert fits(cashier)
    waiter = open_as("waiter", PHONE)
    waiter.goto("/waiter/")
    live(waiter)
    proof = cashier.locator(".proof").first
    order_id = proof.get_attribute("data-order")
    proof.locator("input[name=reason]").fill("Monto ilegible")
    proof.locator("button.reject").click()
    waiter.wait_for_selector(f"#rejected-{order_id}", timeout=5000)
    text = waiter.locator(f"#rejected-{order_id}").inner_text()
    assert "Proof rejected" in text and "Monto ilegible" in text
    card = waiter.locator(f"#waiter-list .card.order[data-order='{order_id}']")
    assert card.locator("button.retry").inner_text() == "Retry payment"
    assert fits(waiter)


def test_a_print_error_tells_the_customer_the_operator_and_staff(stack, open_as, browser):
    # Every printer unreachable (nothing listens on port 1).
    stack.manage(
        "shell", "-c", "from tickets.models import Printer; "
        "Printer.objects.update(url='tcp://127.0.0.1:1')",
    )  # fmt: skip
    staff = open_as("staff", DESKTOP)
    live(staff)
    operator = open_as("operator", PHONE)
    operator.goto("/operator/")
    live(operator)

    token = stack.demo_line(r"kiosk page:\s+/kiosk/\?token=(\S+)$")
    kiosk = open_as(None, DESKTOP)
    kiosk.goto(f"/kiosk/?token={token}")
    kiosk.click("[data-service='A']")
    kiosk.click("button[value='card']")
    live(kiosk)
    kiosk.click("button[value='approve']")
    kiosk.wait_for_selector("[data-ticket-status='print_error']", timeout=15000)
    code = kiosk.locator("#ticket-number").inner_text()
    assert "Show this number at the desk" in kiosk.locator("#ticket-msg").inner_text()

    row = operator.locator(f"tr[data-ticket='{code}'][data-status='print_error']")
    row.wait_for(timeout=5000)
    assert "print error" in row.inner_text()
    assert row.locator("form.reprint").count() == 1
    assert fits(operator)

    # Staff see the alert live, by its label: never "ticket.print_error".
    staff.wait_for_selector("#alert-bar:not([hidden]) #alert-last[data-code]", timeout=5000)
    last = staff.locator("#alert-last")
    assert last.get_attribute("data-code") == "ticket.print_error"
    assert last.inner_text() == "Ticket printing failed"
    assert not re.search(r"\b[a-z_]+\.[a-z_]+\b", staff.locator("#alert-bar").inner_text())


@SIZES
def test_the_403_page_explains_and_leads_home(open_as, viewport):
    page = open_as("customer", viewport)
    response = page.goto("/operations/")
    assert response.status == 403
    assert page.locator(".error-page[data-error='403'] h1").inner_text()
    assert "role" in page.locator(".error-page").inner_text()
    home = page.locator("#error-home")
    assert home.is_visible() and home.get_attribute("href") == "/"
    assert fits(page)
