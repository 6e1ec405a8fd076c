"""The layout in Chromium at a laptop's and a phone's width: no page scrolls sideways, the
navigation fits one line (staff) or folds behind a Menu button (phones), each role sees its
own links, the plans page's payment choices never overlap, and a payment's page says what
happened, why, and what to do next."""

import re

import pytest

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CUSTOMER_ONLY = ("/payments/", "/machines/", "/billing/")
STAFF_ONLY = ("/admin/", "/operations/", "/api/docs/")


@pytest.fixture(scope="module")
def stack(sqlite_memory_stack):
    # The embedded stack, shared with the other browser tests: layout does not depend on
    # the database engine.
    return sqlite_memory_stack


def nav_hrefs(page) -> list[str]:
    return page.eval_on_selector_all("#site-nav a", "links => links.map(a => a.pathname)")


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_customer_pages_fit_the_width_and_plan_choices_do_not_overlap(open_as, viewport):
    page = open_as("customer", viewport)
    for path in ("/", "/payments/", "/billing/", "/machines/lav-01/"):
        page.goto(path)
        assert overflow(page) == 0, path
    page.goto("/billing/")
    plans = page.locator("form.plan")
    assert plans.count() >= 2
    # Each plan's boxes measured at one moment (the page may still move as it connects).
    measured = page.eval_on_selector_all(
        "form.plan",
        """plans => plans.map(plan => {
            const box = e => { const r = e.getBoundingClientRect();
                return {x: r.x, y: r.y, width: r.width, height: r.height}; };
            return {card: box(plan),
                    boxes: [...plan.querySelectorAll('.pay-with .option')].map(box)};
        })""",
    )
    for plan in measured:
        card, boxes = plan["card"], plan["boxes"]
        assert boxes
        for j, box in enumerate(boxes):
            assert box["x"] >= card["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
            for other in boxes[j + 1 :]:
                assert not boxes_overlap(box, other), (box, other)


def test_navigation_per_role_and_one_line_for_staff(open_as):
    staff = open_as("staff", DESKTOP)
    links = nav_hrefs(staff)
    assert "/operations/" in links and "/admin/" in links
    assert not set(links) & set(CUSTOMER_ONLY)
    nav = staff.locator("#site-nav").bounding_box()
    first_link = staff.locator("#site-nav a").first.bounding_box()
    assert nav["height"] < first_link["height"] * 1.5, (nav, first_link)
    # Whatever the live state says (a slow connection, a longer language), still one line.
    for word in ("Connecting…", "Reconnecting…", "Переподключение…"):
        staff.evaluate(
            "w => { const s = document.getElementById('events-status');"
            " s.hidden = false; s.dataset.state = 'reconnecting'; s.textContent = w; }",
            word,
        )
        nav = staff.locator("#site-nav").bounding_box()
        assert nav["height"] < first_link["height"] * 1.5, (word, nav, first_link)
    assert staff.locator("#menu-button").is_hidden()
    assert overflow(staff) == 0

    customer = open_as("customer", DESKTOP)
    links = nav_hrefs(customer)
    assert set(CUSTOMER_ONLY) <= set(links)
    assert not set(links) & set(STAFF_ONLY)
    assert "You have no staff role" not in customer.locator("main").inner_text()


def test_phone_menu_is_collapsed_and_opens_on_tap(open_as):
    page = open_as("customer", PHONE)
    button = page.locator("#menu-button")
    assert button.is_visible() and button.get_attribute("aria-expanded") == "false"
    assert page.locator("#site-nav").is_hidden()
    assert page.locator("#topbar").bounding_box()["height"] < 80
    # Whatever the live state says (a slow connection, a longer language), one line.
    for word in ("Connecting…", "Reconnecting…", "Переподключение…"):
        page.evaluate(
            "w => { const s = document.getElementById('events-status');"
            " s.hidden = false; s.dataset.state = 'reconnecting'; s.textContent = w; }",
            word,
        )
        assert page.locator("#topbar").bounding_box()["height"] < 80, word
    button.click()
    page.wait_for_selector("#site-nav a[href='/payments/']", state="visible")
    assert button.get_attribute("aria-expanded") == "true"
    assert overflow(page) == 0
    button.click()
    page.wait_for_selector("#site-nav", state="hidden")


def start_topup(page, amount: str) -> str:
    page.goto("/payments/")
    page.fill("#id_amount", amount)
    page.click("form.inline button[type=submit]")
    page.wait_for_url(re.compile(r".*/payments/ps_[^/]+/$"))
    page.wait_for_selector("#events-status[data-state='connected']", timeout=10000)
    return page.locator(".payment").get_attribute("data-reference")


def provider_acts(stack, reference: str, action: str) -> None:
    (payment_id,) = [
        pid for pid, p in stack.fake_mp.payments.items() if p["external_reference"] == reference
    ]
    assert stack.fake_mp.act(payment_id, action)["delivered"] == 200


@pytest.mark.parametrize(
    ("action", "title", "reason"),
    [
        ("reject", "This payment was rejected", "rejected the payment"),
        ("expire", "This payment expired", "expired before it was paid"),
    ],
)
def test_an_unpaid_pix_says_why_and_offers_to_try_again(stack, open_as, action, title, reason):
    page = open_as("customer", PHONE)
    reference = start_topup(page, "12.00")
    provider_acts(stack, reference, action)
    page.wait_for_selector(f"#payment-state:has-text('{title}')", timeout=5000)
    assert reason in page.locator("#payment-reason").inner_text()
    assert page.locator("#payment-outcome").get_attribute("data-tone") in ("failure", "warning")
    again = page.locator("#try-again")
    assert again.is_visible() and again.get_attribute("href") == "/payments/#wallet"
    assert overflow(page) == 0


def test_a_confirmed_topup_shows_the_new_balance_above_the_demo_note(stack, open_as):
    page = open_as("customer", DESKTOP)
    page.goto("/payments/")
    before = float(page.locator(".balance").get_attribute("data-balance"))
    start_topup(page, "15.00")
    page.click("button[value='approve']")  # the demo's simulate: fake provider → webhook
    page.wait_for_selector("#new-balance", timeout=5000)
    assert float(page.locator("#new-balance").get_attribute("data-balance")) == before + 15
    assert "R$15.00 was added" in page.locator("#payment-credited").inner_text()
    note = page.locator("li.info").bounding_box()
    result = page.locator("#payment-outcome").bounding_box()
    assert note["y"] > result["y"] + result["height"]
