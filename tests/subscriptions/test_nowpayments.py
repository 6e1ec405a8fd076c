"""NOWPayments: invoice through the API (fake), IPNs verified byte-faithfully, and the
original bug — a `finished` IPN for an inactive user — as a regression test."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from fakeproviders.billing import RawNumber, nowpayments_serialise, nowpayments_sign
from notifications.models import Event
from payments.models import DeliveryStatus, PaymentSession, WebhookDelivery, WebhookRefusal
from payments.providers.nowpayments import parse_faithful, serialise_sorted, signature_valid
from subscriptions.models import Subscription, SubscriptionEvent
from tests.factories import SubscriptionFactory
from tests.subscriptions.conftest import NP_KEY, NP_SECRET, checkout, post_nowpayments

pytestmark = pytest.mark.django_db

_updates = iter(range(10**6))


def ipn(session, status: str, **overrides) -> dict:
    """An IPN in NOWPayments' own shape and key order, numbers as JavaScript writes them."""
    body = {
        "payment_id": 5077125051,
        "parent_payment_id": None,
        "invoice_id": 4522625843,
        "payment_status": status,
        "pay_address": "0xd1cDE08A07cD25adEbEd35c3867a59228C09B606",
        "payin_extra_id": None,
        "price_amount": RawNumber("9.99"),
        "price_currency": "usd",
        "pay_amount": RawNumber("6.35e-05"),
        "actually_paid": RawNumber("0.0000635"),
        "actually_paid_at_fiat": RawNumber("9.99"),
        "pay_currency": "btc",
        "order_id": session.reference,
        "order_description": "Pro, 30 days",
        "purchase_id": "5837122679",
        "outcome_amount": RawNumber("0.0000628"),
        "outcome_currency": "btc",
        "payment_extra_ids": None,
        "fee": {
            "currency": "btc",
            "depositFee": 0,
            "withdrawalFee": RawNumber("1e-06"),
            "serviceFee": RawNumber("100"),
        },
        "created_at": "2026-11-22T10:00:00.000Z",
        "updated_at": f"2026-11-22T10:{next(_updates) % 60:02d}:00.000Z",
    }
    body.update(overrides)
    return body


@pytest.fixture
def session(billing, plans, customer):
    return checkout(customer, plans["usd"], "nowpayments")


# --- signatures ---------------------------------------------------------------------------


def test_signature_is_over_the_sorted_body_with_numbers_as_sent():
    obj = {"b": RawNumber("6.35e-05"), "a": RawNumber("100"), "fee": {"z": 0, "y": "é"}}
    body = nowpayments_serialise(obj, sort_keys=False).encode()
    assert b"6.35e-05" in body and b'"a":100' in body
    parsed = parse_faithful(body)
    assert serialise_sorted(parsed) == '{"a":100,"b":6.35e-05,"fee":{"y":"é","z":0}}'
    assert signature_valid(parsed, nowpayments_sign(obj, NP_SECRET), NP_SECRET)
    assert not signature_valid(parsed, nowpayments_sign(obj, "another-secret"), NP_SECRET)
    assert not signature_valid(parsed, "", NP_SECRET)


def test_python_float_round_trip_would_break_the_signature(session):
    obj = ipn(session, "finished")
    body = nowpayments_serialise(obj, sort_keys=False).encode()
    naive = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    naive_sig = hmac.new(NP_SECRET.encode(), naive.encode(), hashlib.sha512).hexdigest()
    assert naive_sig != nowpayments_sign(obj, NP_SECRET)  # 0.0000635 became 6.35e-05
    assert signature_valid(parse_faithful(body), nowpayments_sign(obj, NP_SECRET), NP_SECRET)


def test_forged_or_unsigned_ipn_changes_nothing(client, session, settings):
    assert post_nowpayments(client, ipn(session, "finished"), secret="forged").status_code == 401
    obj = ipn(session, "finished")
    tampered = nowpayments_serialise(obj, sort_keys=False).replace('"9.99"', '"0.01"')
    tampered = tampered.replace(":9.99,", ":0.01,").encode()
    assert post_nowpayments(client, obj, body=tampered).status_code == 401
    settings.NOWPAYMENTS_IPN_SECRET = ""
    assert post_nowpayments(client, ipn(session, "finished")).status_code == 401
    session.refresh_from_db()
    assert session.status == "pending"
    # Refused before anything is stored: only counted.
    assert not WebhookDelivery.objects.exists()
    refusals = WebhookRefusal.objects.filter(provider="nowpayments", reason="invalid signature")
    assert refusals.aggregate(total=Sum("count"))["total"] == 3


def test_repeated_keys_are_refused(client, session):
    obj = ipn(session, "finished")
    body = nowpayments_serialise(obj, sort_keys=False)
    body = body[:-1] + ',"order_id":"someone-else"}'
    response = post_nowpayments(client, obj, body=body.encode())
    assert response.status_code == 401
    session.refresh_from_db()
    assert session.status == "pending"
    assert not WebhookDelivery.objects.exists()


# --- the flow -----------------------------------------------------------------------------


def test_checkout_creates_an_invoice_and_redirects_to_it(session, billing):
    invoice_id = session.provider_data["invoice_id"]
    invoice = billing.invoices[invoice_id]
    assert session.provider_data["redirect_url"] == invoice["invoice_url"]
    assert invoice["order_id"] == session.reference
    assert invoice["ipn_callback_url"] == "http://testserver/webhooks/nowpayments/"
    assert "order_id=" + session.reference in invoice["success_url"]


def test_checkout_without_api_key_is_a_clear_error(billing, plans, customer, settings):
    from payments.errors import ProviderUnavailable

    settings.NOWPAYMENTS_API_KEY = "wrong"
    with pytest.raises(ProviderUnavailable):
        checkout(customer, plans["usd"], "nowpayments")
    assert NP_KEY != "wrong"


def test_finished_ipn_activates_an_inactive_subscription(client, session, customer):
    """The original bug: the payment said finished, the user stayed inactive."""
    SubscriptionFactory(user=customer)  # inactive, as the bug left users
    since = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = post_nowpayments(client, ipn(session, "finished"))
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilled_at is not None
    assert session.paid_amount == session.amount and session.paid_currency == "USD"
    subscription = Subscription.objects.get(user=customer)
    assert subscription.status == "active" and subscription.tier == "pro"
    assert subscription.current_period_end > timezone.now() + timedelta(days=29)
    event = SubscriptionEvent.objects.get(payment_session=session)
    assert (event.type, event.actor_type) == ("activated", "provider")
    pushed = Event.objects.filter(id__gt=since, audience=f"user:{customer.pk}")
    assert pushed.filter(type="subscription.activated").exists()


def test_sequence_waiting_confirming_finished(client, session, customer):
    assert post_nowpayments(client, ipn(session, "waiting")).status_code == 200
    session.refresh_from_db()
    assert session.status == "pending"
    post_nowpayments(client, ipn(session, "confirming"))
    session.refresh_from_db()
    assert session.status == "processing" and session.provider_payment_id == "5077125051"
    post_nowpayments(client, ipn(session, "finished"))
    session.refresh_from_db()
    assert session.status == "completed"


def test_duplicate_ipn_never_extends_twice(client, session, customer):
    obj = ipn(session, "finished")
    assert post_nowpayments(client, obj).json()["status"] == "processed"
    end = Subscription.objects.get(user=customer).current_period_end
    assert post_nowpayments(client, obj).json()["status"] == "duplicate"  # same event
    later = ipn(session, "finished")  # the provider's resend, a new updated_at
    assert post_nowpayments(client, later).json()["status"] == "duplicate"
    assert Subscription.objects.get(user=customer).current_period_end == end
    assert SubscriptionEvent.objects.filter(user=customer).count() == 1


def test_partially_paid_stays_processing_with_an_alert(client, session):
    since = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    post_nowpayments(client, ipn(session, "partially_paid", actually_paid=RawNumber("3e-05")))
    session.refresh_from_db()
    assert session.status == "processing" and session.fulfilled_at is None
    alerts = Event.objects.filter(id__gt=since, audience="role:staff", type="alert.raised")
    assert [a.payload["code"] for a in alerts] == ["payment.partially_paid"]


@pytest.mark.parametrize("status", ["failed", "expired"])
def test_failed_and_expired_close_the_session(client, session, status):
    post_nowpayments(client, ipn(session, status))
    session.refresh_from_db()
    assert session.status == status
    # A late `finished` is recorded and held for a refund decision, not fulfilled.
    post_nowpayments(client, ipn(session, "finished"))
    session.refresh_from_db()
    assert session.status == "completed" and session.late_payment and session.refund_due
    assert session.fulfilled_at is None
    assert SubscriptionEvent.objects.get(payment_session=session).type == "payment_mismatch"


def test_refunded_records_a_refund(client, session, customer):
    post_nowpayments(client, ipn(session, "finished"))
    post_nowpayments(client, ipn(session, "refunded"))
    session.refresh_from_db()
    assert session.status == "refunded"
    types = set(SubscriptionEvent.objects.filter(user=customer).values_list("type", flat=True))
    assert types == {"activated", "refunded"}


def test_a_wrong_price_is_held_not_activated(client, session, customer):
    post_nowpayments(client, ipn(session, "finished", price_amount=RawNumber("1")))
    session.refresh_from_db()
    assert session.status == "completed" and session.amount_mismatch
    assert not Subscription.objects.filter(user=customer, status="active").exists()
    assert SubscriptionEvent.objects.get(user=customer).type == "payment_mismatch"


def test_unknown_order_is_logged_and_ignored(client, billing, plans):
    fake = PaymentSession(reference="ps_not_ours")
    response = post_nowpayments(client, ipn(fake, "finished"))
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED
