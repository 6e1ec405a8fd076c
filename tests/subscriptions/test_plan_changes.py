"""Paying for another tier while a plan runs is an upgrade or a downgrade: a new period
starts now and the unused time is credited pro rata — never a renewal that turns Basic
days into Pro days. The plans page shows the price after a coupon, and what paying would
do, before anything is paid."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from payments.models import AuditSource, Coupon, PaymentSession
from payments.services.confirmation import Evidence, payment_confirm
from subscriptions.errors import SubscriptionError
from subscriptions.models import Subscription, SubscriptionEvent
from subscriptions.services.plans import subscription_activate_manually
from tests.factories import CouponFactory, PlanFactory, UserFactory
from tests.payments.test_throttling import rates
from tests.subscriptions.conftest import checkout

pytestmark = pytest.mark.django_db


@pytest.fixture
def pro_uzs(plans):
    return PlanFactory(
        code="pro-uzs", name="Pro", tier="pro", price=Decimal("98000.00"), currency="UZS"
    )


def pay(session):
    return payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount,
        currency=session.currency,
        provider_payment_id=f"pp-{session.pk}",
    )


def left(customer, days: int) -> None:
    """The running period has `days` left (as if time had passed)."""
    Subscription.objects.filter(user=customer).update(
        current_period_end=timezone.now() + timedelta(days=days)
    )


def kinds(customer) -> list[str]:
    return list(
        SubscriptionEvent.objects.filter(user=customer)
        .order_by("id")
        .values_list("type", flat=True)
    )


def test_upgrade_starts_a_new_period_with_the_unused_days_credited(
    billing, plans, pro_uzs, customer
):
    pay(checkout(customer, plans["uzs"], "click"))
    left(customer, 20)
    t0 = timezone.now()
    pay(checkout(customer, pro_uzs, "click"))
    t1 = timezone.now()
    subscription = Subscription.objects.get(user=customer)
    assert (subscription.plan, subscription.tier) == (pro_uzs, "pro")
    # 20 Basic days at 49 000 / 30 d are worth 10 Pro days at 98 000 / 30 d.
    assert t0 + timedelta(days=40) - timedelta(seconds=1) <= subscription.current_period_end
    assert subscription.current_period_end <= t1 + timedelta(days=40)
    assert t0 <= subscription.current_period_start <= t1
    assert kinds(customer) == ["activated", "upgraded"]
    event = SubscriptionEvent.objects.get(user=customer, type="upgraded")
    assert event.data["previous_plan"] == "basic-uzs" and event.data["plan"] == "pro-uzs"
    assert event.data["credit_days"] == "10.00"
    assert event.data["credit_basis"] == "price_per_day"


def test_downgrade_credits_the_dearer_days_as_more_cheaper_days(billing, plans, pro_uzs, customer):
    pay(checkout(customer, pro_uzs, "click"))
    left(customer, 10)
    t0 = timezone.now()
    pay(checkout(customer, plans["uzs"], "click"))
    subscription = Subscription.objects.get(user=customer)
    assert subscription.tier == "basic"
    # 10 Pro days are worth 20 Basic days: 30 + 20 from now.
    expected = t0 + timedelta(days=50)
    assert abs(subscription.current_period_end - expected) < timedelta(seconds=5)
    assert kinds(customer) == ["activated", "downgraded"]
    assert SubscriptionEvent.objects.get(type="downgraded").data["credit_days"] == "20.00"


def test_same_tier_is_still_a_renewal(billing, plans, pro_uzs, customer):
    pay(checkout(customer, pro_uzs, "click"))
    end = Subscription.objects.get(user=customer).current_period_end
    pay(checkout(customer, pro_uzs, "click"))
    assert Subscription.objects.get(user=customer).current_period_end == end + timedelta(days=30)
    assert kinds(customer) == ["activated", "renewed"]


def test_a_change_to_another_currency_is_refused_before_payment(billing, plans, customer):
    pay(checkout(customer, plans["uzs"], "click"))
    with pytest.raises(SubscriptionError) as refused:
        checkout(customer, plans["usd"], "nowpayments")
    assert refused.value.code == "plan_change_currency"
    assert "UZS" in refused.value.message
    assert PaymentSession.objects.filter(user=customer).count() == 1


def test_a_change_paid_in_another_currency_anyway_credits_day_for_day(billing, plans, customer):
    """Two checkouts opened before the first plan started (nothing to refuse then), both
    paid: the second is a plan change; with no exchange rate the unused days carry over
    one for one, and the event says so."""
    usd = checkout(customer, plans["usd"], "nowpayments")
    pay(checkout(customer, plans["uzs"], "click"))
    left(customer, 12)
    t0 = timezone.now()
    pay(usd)
    subscription = Subscription.objects.get(user=customer)
    assert subscription.tier == "pro"
    assert abs(subscription.current_period_end - (t0 + timedelta(days=42))) < timedelta(seconds=5)
    event = SubscriptionEvent.objects.get(user=customer, type="plan_changed")
    assert event.data["credit_basis"] == "day_for_day" and event.data["credit_days"] == "12.00"
    assert "renewed" not in kinds(customer)


def test_manual_activation_of_another_tier_follows_the_same_rule(billing, plans, pro_uzs, customer):
    staff = UserFactory(is_staff=True)
    pay(checkout(customer, plans["uzs"], "click"))
    left(customer, 20)
    t0 = timezone.now()
    subscription_activate_manually(
        user=customer, plan=pro_uzs, days=5, actor=staff, reason="goodwill upgrade"
    )
    subscription = Subscription.objects.get(user=customer)
    assert abs(subscription.current_period_end - (t0 + timedelta(days=15))) < timedelta(seconds=5)
    event = SubscriptionEvent.objects.get(user=customer, type="manual_activation")
    assert event.data["change"] == "upgraded" and event.data["credit_days"] == "10.00"


def test_my_subscription_says_upgraded(client, billing, plans, pro_uzs, customer):
    pay(checkout(customer, plans["uzs"], "click"))
    pay(checkout(customer, pro_uzs, "click"))
    client.force_login(customer)
    text = client.get("/billing/subscription/").content.decode()
    assert 'data-type="upgraded"' in text and "Upgraded" in text
    assert 'data-type="renewed"' not in text


# --- the price before paying -------------------------------------------------------------------


def quote(page, code: str) -> str:
    text = page.content.decode()
    start = text.index(f'id="quote-{code}"')
    return text[start : text.index("</div>", start)]


def test_plans_page_shows_the_price_after_a_coupon_before_paying(
    client, billing, plans, pro_uzs, customer
):
    CouponFactory(code="HALF", kind="percent", value=50, max_uses=1)
    client.force_login(customer)
    page = client.get("/billing/")
    assert 'data-total="49000.00"' in quote(page, "basic-uzs")
    page = client.get("/billing/?plan=basic-uzs&coupon=half")
    shown = quote(page, "basic-uzs")
    assert 'data-total="24500.00"' in shown and 'data-discount="24500.00"' in shown
    assert "You pay <strong>UZS24,500.00</strong>" in shown
    assert 'data-total="98000.00"' in quote(page, "pro-uzs")  # the coupon was typed for Basic
    # Looking is free: no payment opened, the one-use coupon neither held nor used.
    assert not PaymentSession.objects.exists()
    assert Coupon.objects.get(code="HALF").used_count == 0
    # …and the price shown is the price asked.
    session = checkout(customer, plans["uzs"], "click", coupon_code="HALF")
    assert session.amount == Decimal("24500.00")


def test_plans_page_explains_a_bad_coupon(client, billing, plans, customer):
    CouponFactory(code="OLD", active=False)
    client.force_login(customer)
    for coupon, message in (("NOPE", "Unknown coupon code."), ("OLD", "no longer active")):
        shown = quote(client.get(f"/billing/?plan=basic-uzs&coupon={coupon}"), "basic-uzs")
        assert message in shown and 'data-total="49000.00"' in shown


def test_plans_page_shows_what_paying_would_do(client, billing, plans, pro_uzs, customer):
    pay(checkout(customer, plans["uzs"], "click"))
    left(customer, 20)
    client.force_login(customer)
    page = client.get("/billing/")
    pro = quote(page, "pro-uzs")
    assert 'data-change="upgraded"' in pro and "10.00 days credited" in pro
    assert 'data-change="renewed"' in quote(page, "basic-uzs")
    usd = quote(page, "pro-usd")
    assert "plan-refused" in usd and "Choose a plan priced in UZS" in usd
    # Until when, in the business's time zone, named.
    assert f"({django_settings.BUSINESS_TIME_ZONE})). Choose a plan" in usd
    assert PaymentSession.objects.count() == 1


def test_coupon_checks_are_throttled_apart_from_checkout(
    client, settings, billing, plans, customer
):
    rates(settings, payment_session_create="2/hour")
    CouponFactory(code="HALF", kind="percent", value=50)
    client.force_login(customer)
    for _ in range(2):
        shown = quote(client.get("/billing/?plan=basic-uzs&coupon=HALF"), "basic-uzs")
        assert 'data-total="24500.00"' in shown
    shown = quote(client.get("/billing/?plan=basic-uzs&coupon=HALF"), "basic-uzs")
    assert "Too many attempts" in shown and 'data-total="49000.00"' in shown
    # Looking did not use up paying.
    response = client.post(
        "/billing/checkout/",
        {"plan": "basic-uzs", "provider": "click", "key": "k1", "coupon": "HALF"},
    )
    assert response.status_code == 302
    assert PaymentSession.objects.get().amount == Decimal("24500.00")
