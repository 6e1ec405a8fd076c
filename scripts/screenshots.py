"""Take the README's screenshots: a throwaway Confirma (SQLite, fake providers) in Chromium.

Run with `make screenshots`; writes docs/screenshots/*.png in English and
docs/screenshots/pt-br/*.png in Portuguese (Brazil), each set from its own fresh demo.
`python scripts/screenshots.py pt-br` takes one set only.
"""

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.stack import CHROMIUM_FLAGS, Stack  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
# Language code → (the browser's locale, where its set goes).
LANGUAGES = {"en": ("en-US", OUT), "pt-br": ("pt-BR", OUT / "pt-br")}


def main(languages: list[str]) -> None:
    for language in languages:
        locale, out = LANGUAGES[language]
        out.mkdir(parents=True, exist_ok=True)
        shoot(locale, out)
        print(f"screenshots written to {out.relative_to(ROOT)}")


def shoot(locale: str, out: Path) -> None:
    """Every picture, in `locale`, from a fresh demo (the flows change its data)."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack("sqlite-memory", Path(tmp))
        stack.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
                    args=CHROMIUM_FLAGS,
                )

                def new_page(**options):
                    # One context per page: its own cookies (login) and the reader's language.
                    return browser.new_context(locale=locale, **options).new_page()

                _pictures(stack, out, new_page)
                browser.close()
        except Exception:
            stack.log.flush()
            print((Path(tmp) / "daphne-sqlite-memory.log").read_text()[-3000:])
            raise
        finally:
            stack.close()


def _pictures(stack, out: Path, new_page) -> None:
    """The README's pictures: each flow as a person goes through it."""
    page = new_page(base_url=stack.url, viewport={"width": 1100, "height": 760})
    page.goto("/accounts/login/")
    page.fill("#id_username", "customer")
    page.fill("#id_password", "confirma-demo")
    page.click("form.form button[type=submit]")
    page.wait_for_url(stack.url + "/")
    page.screenshot(path=out / "home.png")
    page.goto("/payments/")
    page.fill("#id_amount", "25.00")
    page.click("form.inline button[type=submit]")
    page.wait_for_url(re.compile(r".*/payments/ps_[^/]+/$"))
    page.wait_for_selector("#events-status[data-state='connected']")
    page.screenshot(path=out / "pix-payment.png", full_page=True)
    page.click("button[value='approve']")
    page.wait_for_selector("#payment-outcome[data-tone='success']")
    page.screenshot(path=out / "payment-confirmed.png")
    # Machines: pay 30 minutes of a washer by PIX, the provider approves.
    page.goto("/machines/lav-01/")
    page.locator("input[name=minutes]").first.check()
    page.click("button[value='pix']")
    page.wait_for_selector("#pix-modal[open]")
    page.wait_for_selector("#events-status[data-state='connected']")
    page.screenshot(path=out / "machine-pix.png", full_page=True)
    page.click("button[value='approve']")
    page.wait_for_selector("#activated")
    page.screenshot(path=out / "machine-activated.png")
    # Subscriptions: Click checkout through the fake payment page.
    page.goto("/billing/")
    # The price after a coupon shows before paying.
    quote = page.locator("form.plan[data-plan='pro-uzs']")
    quote.locator("input[name=coupon]").fill("DEMO10")
    page.wait_for_selector("#quote-pro-uzs[data-total='89100.00']")
    page.screenshot(path=out / "plans.png", full_page=True)
    plan = page.locator("form.plan[data-plan='pro-uzs']")
    plan.locator("input[value='click']").check()
    plan.locator("button[type=submit]").click()
    page.wait_for_selector("#pay")
    page.screenshot(path=out / "click-page.png")
    page.click("#pay")
    page.wait_for_selector("#subscription-active")
    page.screenshot(path=out / "subscription-return.png")
    page.goto("/billing/subscription/")
    page.screenshot(path=out / "my-subscription.png", full_page=True)

    # Kiosk: a ticket paid on the card terminal, called by an operator.
    kiosk_token = stack.demo_line(r"kiosk page:\s+/kiosk/\?token=(\S+)$")
    display_token = stack.demo_line(r"display board:\s+/display/\?token=(\S+)$")
    kiosk = new_page(base_url=stack.url, viewport={"width": 1024, "height": 700})
    kiosk.goto(f"/kiosk/?token={kiosk_token}")
    kiosk.screenshot(path=out / "kiosk-services.png")
    kiosk.click("[data-service='A']")
    kiosk.fill("#id_customer_name", "João")
    kiosk.click("button[value='card']")
    kiosk.wait_for_selector("#events-status[data-state='connected']")
    kiosk.click("button[value='approve']")
    kiosk.wait_for_selector("#ticket-msg.ok", timeout=15000)
    kiosk.screenshot(path=out / "kiosk-ticket.png")
    operator = new_page(base_url=stack.url, viewport={"width": 1100, "height": 700})
    operator.goto("/accounts/login/")
    operator.fill("#id_username", "operator")
    operator.fill("#id_password", "confirma-demo")
    operator.click("form.form button[type=submit]")
    operator.goto("/operator/")
    operator.fill("#desk", "2")
    operator.click("#desk-form button[type=submit]")
    operator.click("#call-next")
    operator.wait_for_selector("#at-desks tr[data-status='called']")
    operator.screenshot(path=out / "operator.png", full_page=True)
    board = new_page(base_url=stack.url, viewport={"width": 1100, "height": 500})
    board.goto(f"/display/?token={display_token}")
    board.screenshot(path=out / "display.png")

    # Restaurant: a waiter's proof rejected by the cashier.
    def logged_in(username):
        tab = new_page(base_url=stack.url, viewport={"width": 1100, "height": 700})
        tab.goto("/accounts/login/")
        tab.fill("#id_username", username)
        tab.fill("#id_password", "confirma-demo")
        tab.click("form.form button[type=submit]")
        return tab

    cashier = logged_in("cashier")
    cashier.goto("/cashier/")
    cashier.wait_for_selector(".proof")
    cashier.screenshot(path=out / "cashier.png", full_page=True)
    proof = cashier.locator(".proof").first
    proof.locator("input[name=reason]").fill("Monto ilegible")
    proof.locator("button.reject").click()
    waiter = logged_in("waiter")
    waiter.goto("/waiter/")
    waiter.wait_for_selector(".rejected")
    waiter.screenshot(path=out / "waiter.png", full_page=True)
    # A waiter takes an order on a phone.
    phone = new_page(
        base_url=stack.url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    phone.goto("/accounts/login/")
    phone.fill("#id_username", "waiter")
    phone.fill("#id_password", "confirma-demo")
    phone.click("form.form button[type=submit]")
    phone.goto("/waiter/new/")
    phone.select_option("#id_table", label="Mesa 8")
    tacos = phone.locator(".entry-item", has_text="Tacos al pastor")
    tacos.locator("button[data-step='1']").tap()
    tacos.locator("button[data-step='1']").tap()
    phone.locator("#id_notes").fill("Sin cebolla")
    phone.screenshot(path=out / "waiter-new-order.png", full_page=True)
    admin = new_page(base_url=stack.url, viewport={"width": 1300, "height": 700})
    admin.goto("/admin/login/")
    admin.fill("#id_username", "admin")
    admin.fill("#id_password", "confirma-demo")
    admin.click("input[type=submit]")
    admin.goto("/admin/payments/webhookdelivery/")
    admin.screenshot(path=out / "admin-webhooks.png")
    admin.goto("/operations/")
    admin.screenshot(path=out / "operations.png", full_page=True)
    admin.goto("/integration/")
    admin.screenshot(path=out / "integration.png", full_page=True)


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(LANGUAGES)
    unknown = [language for language in chosen if language not in LANGUAGES]
    if unknown:
        sys.exit(f"unknown language {unknown[0]!r}; choose from {', '.join(LANGUAGES)}")
    main(chosen)
