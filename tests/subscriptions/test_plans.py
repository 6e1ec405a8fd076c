"""Plan subscriptions: activation and renewal, expiry, staff fixes in the admin, pages."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications.models import Event
from payments.errors import InvalidParams
from payments.models import AuditSource, PaymentSession
from payments.services.confirmation import Evidence, payment_confirm
from subscriptions.errors import SubscriptionError
from subscriptions.models import Subscription, SubscriptionEvent
from subscriptions.services.plans import (
    subscription_activate_manually,
    subscription_deactivate,
    subscriptions_expire_due,
)
from tests.factories import CouponFactory, SubscriptionFactory, UserFactory
from tests.subscriptions.conftest import checkout

pytestmark = pytest.mark.django_db


def pay(session, amount=None):
    return payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount if amount is None else amount,
        currency=session.currency,
        provider_payment_id=f"pp-{session.pk}",
    )


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_renewal_extends_from_the_period_end_not_today(billing, plans, customer):
    first = checkout(customer, plans["uzs"], "click")
    pay(first)
    subscription = Subscription.objects.get(user=customer)
    end = subscription.current_period_end
    second = checkout(customer, plans["uzs"], "click")
    pay(second)
    subscription.refresh_from_db()
    assert subscription.current_period_end == end + timedelta(days=30)
    kinds = list(
        SubscriptionEvent.objects.filter(user=customer)
        .order_by("id")
        .values_list("type", flat=True)
    )
    assert kinds == ["activated", "renewed"]


def test_after_expiry_a_payment_starts_from_now(billing, plans, customer):
    pay(checkout(customer, plans["uzs"], "click"))
    Subscription.objects.filter(user=customer).update(
        current_period_end=timezone.now() - timedelta(days=3)
    )
    pay(checkout(customer, plans["usd"], "nowpayments"))
    subscription = Subscription.objects.get(user=customer)
    assert subscription.tier == "pro" and subscription.plan.code == "pro-usd"
    remaining = subscription.current_period_end - timezone.now()
    assert timedelta(days=29, hours=23) < remaining <= timedelta(days=30)


def test_a_payment_activates_only_once(billing, plans, customer):
    from payments.registry import purpose_get

    session = checkout(customer, plans["uzs"], "click")
    pay(session)
    end = Subscription.objects.get(user=customer).current_period_end
    session.refresh_from_db()
    purpose_get("subscription").fulfil(session=session)  # a second run changes nothing
    assert Subscription.objects.get(user=customer).current_period_end == end


def test_bad_plan_parameters(billing, plans, customer):
    from payments.services import payment_session_create

    for params in ({}, {"plan": 5}, {"plan": "basic-uzs", "x": 1}, {"plan": "nope"}):
        with pytest.raises(InvalidParams):
            payment_session_create(
                user=customer,
                purpose="subscription",
                provider="click",
                params=params,
                idempotency_key=f"k-{len(str(params))}",
            )
    plans["uzs"].active = False
    plans["uzs"].save()
    with pytest.raises(InvalidParams):
        checkout(customer, plans["uzs"], "click")
    assert not PaymentSession.objects.exists()


def test_coupons_apply_to_plans(billing, plans, customer):
    CouponFactory(code="HALF", kind="percent", value=50)
    session = checkout(customer, plans["uzs"], "click", coupon_code="HALF")
    assert session.amount == Decimal("24500.00") and session.discount == Decimal("24500.00")


def test_same_form_twice_opens_one_payment(billing, plans, customer):
    first = checkout(customer, plans["uzs"], "click", key="form-1")
    again = checkout(customer, plans["uzs"], "click", key="form-1")
    assert first.pk == again.pk


def test_expiry_job(billing, plans, customer):
    pay(checkout(customer, plans["uzs"], "click"))
    other = UserFactory()
    pay(checkout(other, plans["uzs"], "click"))
    Subscription.objects.filter(user=customer).update(
        current_period_end=timezone.now() - timedelta(seconds=1)
    )
    assert subscriptions_expire_due() == 1
    assert subscriptions_expire_due() == 0
    assert Subscription.objects.get(user=customer).status == "expired"
    assert Subscription.objects.get(user=other).status == "active"
    assert SubscriptionEvent.objects.filter(user=customer, type="expired").count() == 1
    assert Event.objects.filter(
        audience=f"user:{customer.pk}", type="subscription.expired"
    ).exists()


def test_manual_activation_from_the_admin(client, staff, plans, customer):
    client.force_login(staff)
    subscription = SubscriptionFactory(user=customer)
    url = "/admin/subscriptions/subscription/"
    form = {"action": "activate_manually", "_selected_action": [subscription.pk]}
    # First the form; without a reason nothing happens.
    page = client.post(url, form)
    assert page.status_code == 200 and b"reason" in page.content.lower()
    page = client.post(url, {**form, "apply": "1", "plan": plans["usd"].pk, "days": 10})
    assert page.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == "inactive"
    response = client.post(
        url,
        {**form, "apply": "1", "plan": plans["usd"].pk, "days": 10, "reason": "paid by bank"},
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.tier == "pro"
    event = SubscriptionEvent.objects.get(user=customer)
    assert (event.type, event.actor_type, event.actor, event.reason) == (
        "manual_activation",
        "staff",
        staff,
        "paid by bank",
    )
    assert event.data["days"] == 10
    assert Event.objects.filter(
        audience=f"user:{customer.pk}", type="subscription.activated"
    ).exists()


def test_deactivation_from_the_admin(client, staff, plans, customer):
    subscription_activate_manually(
        user=customer, plan=plans["uzs"], days=5, actor=staff, reason="trial"
    )
    client.force_login(staff)
    subscription = Subscription.objects.get(user=customer)
    response = client.post(
        "/admin/subscriptions/subscription/",
        {
            "action": "deactivate",
            "_selected_action": [subscription.pk],
            "apply": "1",
            "reason": "chargeback",
        },
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == "cancelled"
    event = SubscriptionEvent.objects.filter(user=customer).first()
    assert (event.type, event.actor, event.reason) == ("manual_deactivation", staff, "chargeback")
    assert Event.objects.filter(
        audience=f"user:{customer.pk}", type="subscription.deactivated"
    ).exists()


def test_staff_fixes_need_staff_and_a_reason(plans, customer, staff):
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(
            user=customer, plan=plans["uzs"], days=5, actor=customer, reason="x"
        )
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(
            user=customer, plan=plans["uzs"], days=5, actor=staff, reason=" "
        )
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(
            user=customer, plan=plans["uzs"], days=0, actor=staff, reason="x"
        )
    with pytest.raises(SubscriptionError):
        subscription_deactivate(user=customer, actor=staff, reason="not active")
    assert not SubscriptionEvent.objects.exists()


def test_admin_pages_open(client, staff, plans, customer):
    subscription_activate_manually(
        user=customer, plan=plans["uzs"], days=5, actor=staff, reason="t"
    )
    client.force_login(staff)
    subscription = Subscription.objects.get(user=customer)
    for url in (
        "/admin/subscriptions/subscription/",
        f"/admin/subscriptions/subscription/{subscription.pk}/change/",
        "/admin/subscriptions/subscriptionevent/",
        "/admin/subscriptions/plan/",
    ):
        assert client.get(url).status_code == 200, url


# --- pages --------------------------------------------------------------------------------


def test_plans_page_and_checkout_redirect(client, billing, plans, customer):
    client.force_login(customer)
    page = client.get("/billing/")
    assert page.status_code == 200
    assert b"basic-uzs" in page.content and b'value="click"' in page.content
    response = client.post(
        "/billing/checkout/", {"plan": "basic-uzs", "provider": "click", "key": "k1"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(billing.url + "/click/services/pay?")
    bad = client.post("/billing/checkout/", {"plan": "pro-usd", "provider": "click", "key": "k2"})
    assert bad.status_code == 302 and bad["Location"] == "/billing/"
    assert PaymentSession.objects.count() == 1


def test_return_page_finds_the_payment_by_what_providers_append(client, billing, plans, customer):
    client.force_login(customer)
    session = checkout(customer, plans["usd"], "nowpayments")
    for query in (
        f"reference={session.reference}",
        f"order_id={session.reference}",
        f"merchant_trans_id={session.reference}",
        f"session_id={session.reference}",
    ):
        page = client.get(f"/billing/return/?{query}")
        assert page.status_code == 200
        assert f'data-reference="{session.reference}"' in page.content.decode()
        assert 'data-state="waiting"' in page.content.decode()
    PaymentSession.objects.filter(pk=session.pk).update(provider_payment_id="5077125051")
    page = client.get("/billing/return/?payment_id=5077125051")
    assert f'data-reference="{session.reference}"' in page.content.decode()
    pay(session)
    page = client.get(f"/billing/return/state/?order_id={session.reference}")
    assert 'data-state="active"' in page.content.decode()


def test_return_page_without_a_known_reference_lists_recent_payments(
    client, billing, plans, customer
):
    session = checkout(customer, plans["usd"], "nowpayments")
    stranger = UserFactory()
    theirs = checkout(stranger, plans["usd"], "nowpayments")
    client.force_login(customer)
    for query in ("", "?reference=nope", f"?reference={theirs.reference}", "?payment_id=1"):
        page = client.get("/billing/return/" + query)
        assert page.status_code == 200
        text = page.content.decode()
        assert 'id="return-unknown"' in text
        assert f'data-reference="{session.reference}"' in text
        assert f'data-reference="{theirs.reference}"' not in text  # only echoed from the URL


def test_return_page_needs_login(client):
    response = client.get("/billing/return/?reference=x")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_my_subscription_page(client, staff, plans, customer):
    client.force_login(customer)
    assert b"no subscription yet" in client.get("/billing/subscription/").content
    subscription_activate_manually(
        user=customer, plan=plans["uzs"], days=5, actor=staff, reason="internal note"
    )
    text = client.get("/billing/subscription/").content.decode()
    assert 'data-type="manual_activation"' in text and "Basic" in text
    assert "internal note" not in text  # staff reasons stay in the admin
