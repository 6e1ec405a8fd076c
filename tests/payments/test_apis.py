"""POST/GET /api/payment-sessions/ and /api/wallet/."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from fakeproviders.pix import pix_code_valid, pix_fields
from payments.models import Coupon, PaymentSession, PaymentStatus
from payments.services import payment_confirm, wallet_adjust
from payments.services.confirmation import Evidence
from tests.factories import CouponFactory, UserFactory
from tests.payments.conftest import create_session

pytestmark = pytest.mark.django_db

TOPUP = {"purpose": "wallet_topup", "provider": "mercadopago", "amount": "20.00"}
# A fixed-price purchase (10.00 BRL) that accepts coupons.
PURCHASE = {"purpose": "test_purchase", "provider": "mercadopago", "params": {"item": "tea"}}


@pytest.fixture
def customer(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_create_returns_the_pix_data(client, customer, mp_fake):
    response = create_session(client, key="k-1", **TOPUP)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {
        "reference",
        "status",
        "amount",
        "currency",
        "expires_at",
        "provider_data",
        "token",
    }
    assert body["status"] == "pending" and body["amount"] == "20.00"
    assert body["currency"] == "BRL"
    # Opaque and random: 18 random bytes, nothing of the customer in it.
    assert re.fullmatch(r"ps_[A-Za-z0-9_-]{24}", body["reference"])
    assert customer.username not in body["reference"]
    pix = body["provider_data"]
    assert pix_code_valid(pix["qr_code"])
    assert pix_fields(pix["qr_code"])["54"] == "20.00"
    assert pix["qr_code_base64"] and pix["ticket_url"]
    # The session's own key went to Mercado Pago as X-Idempotency-Key.
    posts = [h for m, p, h in mp_fake.requests_seen if m == "POST" and p == "/v1/payments"]
    assert posts[0]["x-idempotency-key"] == "k-1"


def test_idempotency_key_semantics(client, customer, mp_fake):
    first = create_session(client, key="same-key", **TOPUP)
    again = create_session(client, key="same-key", **TOPUP)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["reference"] == again.json()["reference"]
    different = create_session(client, key="same-key", **{**TOPUP, "amount": "21.00"})
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_conflict"
    missing = client.post("/api/payment-sessions/", data=TOPUP, content_type="application/json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "idempotency_key_required"
    assert PaymentSession.objects.count() == 1


def test_another_user_cannot_replay_someone_elses_key(client, customer, mp_fake):
    create_session(client, key="shared", **TOPUP)
    client.force_login(UserFactory())
    assert create_session(client, key="shared", **TOPUP).status_code == 409


@pytest.mark.parametrize(
    "body, code",
    [
        ({**TOPUP, "purpose": "teleport"}, "unknown_purpose"),
        ({**TOPUP, "provider": "kiosk"}, "unsupported_provider"),
        ({**TOPUP, "amount": "0.50"}, "invalid_params"),
        ({**TOPUP, "amount": None}, "invalid_params"),
        ({**TOPUP, "currency": "USD"}, "invalid_params"),
        ({**TOPUP, "params": {"x": 1}}, "invalid_params"),
        ({**TOPUP, "amount": "1.234"}, "invalid"),
        ({**TOPUP, "provider": "paypal"}, "invalid"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(client, customer, mp_fake, body, code):
    response = create_session(client, key="bad", **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not PaymentSession.objects.exists()


def test_anonymous_cannot_top_up(client, mp_fake):
    response = create_session(client, key="anon", **TOPUP)
    assert response.status_code == 403
    assert not PaymentSession.objects.exists()


def test_provider_down_at_creation_is_502_and_the_same_key_retries(client, customer, mp_fake):
    mp_fake.outage = True
    response = create_session(client, key="retry-me", **TOPUP)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_unavailable"
    mp_fake.outage = False
    retried = create_session(client, key="retry-me", **TOPUP)
    assert retried.status_code == 200
    assert retried.json()["provider_data"]["qr_code"]
    assert PaymentSession.objects.count() == 1


# --- Coupons -------------------------------------------------------------------------------


def test_percent_coupon_is_applied_and_counted_only_on_completion(
    client, customer, mp_fake, test_purpose
):
    coupon = CouponFactory(code="WELCOME10", kind="percent", value=10)
    body = create_session(client, key="c-1", **PURCHASE, coupon="welcome10").json()
    assert (body["original_amount"], body["discount"], body["amount"]) == ("10.00", "1.00", "9.00")
    assert body["coupon"] == "WELCOME10"
    coupon.refresh_from_db()
    assert coupon.used_count == 0
    payment_confirm(reference=body["reference"], evidence=Evidence(source="webhook"))
    coupon.refresh_from_db()
    assert coupon.used_count == 1


def test_fixed_coupon_never_goes_below_zero(client, customer, mp_fake, test_purpose):
    CouponFactory(code="BIG", kind="fixed", value=Decimal("50.00"), currency="BRL")
    body = create_session(client, key="c-2", **PURCHASE, coupon="BIG").json()
    assert body["amount"] == "0.00" and body["status"] == "completed"


@pytest.mark.parametrize(
    "coupon, message",
    [
        (None, "Unknown coupon"),
        ({"active": False}, "no longer active"),
        ({"valid_until": timezone.now() - timedelta(days=1)}, "expired"),
        ({"valid_from": timezone.now() + timedelta(days=1)}, "not valid yet"),
        ({"max_uses": 1, "used_count": 1}, "used up"),
        ({"purposes": ["subscription"]}, "does not apply"),
        ({"kind": "fixed", "value": 5, "currency": "UZS"}, "does not apply"),
    ],
)
def test_unusable_coupons_are_refused_and_nothing_is_created(
    client, customer, mp_fake, test_purpose, coupon, message
):
    if coupon is not None:
        CouponFactory(code="PROMO", **coupon)
    response = create_session(client, key="c-3", **PURCHASE, coupon="PROMO")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not PaymentSession.objects.exists()


def test_open_sessions_hold_the_last_use_of_a_coupon(client, customer, mp_fake, test_purpose):
    CouponFactory(code="ONCE", max_uses=1)
    assert create_session(client, key="h-1", **PURCHASE, coupon="ONCE").status_code == 201
    refused = create_session(client, key="h-2", **PURCHASE, coupon="ONCE")
    assert refused.status_code == 400
    assert Coupon.objects.get(code="ONCE").used_count == 0


# --- Reading -----------------------------------------------------------------------------


def test_status_is_shown_to_owner_staff_and_token_holder_only(client, customer, mp_fake):
    body = create_session(client, key="r-1", **TOPUP).json()
    url = f"/api/payment-sessions/{body['reference']}/"
    assert client.get(url).json()["status"] == "pending"
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 404
    assert client.get(url, {"token": body["token"]}).status_code == 200
    assert client.get(url, {"token": body["token"] + "x"}).status_code == 404
    client.force_login(UserFactory(roles=["staff"]))
    assert client.get(url).status_code == 200
    assert client.get("/api/payment-sessions/ps_nope/").status_code == 404


def test_wallet_api_shows_balance_and_entries(client, customer):
    staff = UserFactory(roles=["staff"])
    wallet_adjust(user=customer, amount=Decimal("7.50"), actor=staff, reason="goodwill")
    body = client.get("/api/wallet/").json()
    assert body["balance"] == "7.50" and body["currency"] == "BRL"
    assert [(e["kind"], e["amount"], e["reason"]) for e in body["entries"]] == [
        ("adjustment", "7.50", "goodwill")
    ]
    client.logout()
    assert client.get("/api/wallet/").status_code in (401, 403)


def test_schema_documents_the_payment_endpoints(client):
    client.force_login(UserFactory(roles=["staff"]))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/payment-sessions/", "/api/payment-sessions/{reference}/", "/api/wallet/"} <= set(
        schema["paths"]
    )
    params = schema["paths"]["/api/payment-sessions/"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)


def test_pending_session_expires_on_schedule_and_late_money_is_kept(client, customer, mp_fake):
    from payments.services import payment_expire

    body = create_session(client, key="e-1", **TOPUP).json()
    PaymentSession.objects.filter(reference=body["reference"]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    payment_expire(reference=body["reference"], evidence=Evidence(source="system"))
    assert PaymentSession.objects.get(reference=body["reference"]).status == (PaymentStatus.EXPIRED)


def test_top_ups_take_no_coupon(client, customer, mp_fake):
    CouponFactory(code="FREE", kind="percent", value=100)
    response = create_session(client, key="t-1", **TOPUP, coupon="FREE")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "coupon_inapplicable"
    assert not PaymentSession.objects.exists()


def test_pix_expiry_sent_to_mercado_pago_is_at_least_thirty_minutes_ahead(
    client, customer, mp_fake, settings
):
    from django.utils.dateparse import parse_datetime

    settings.PAYMENT_SESSION_TTL_MINUTES = 5
    body = create_session(client, key="x-1", **TOPUP).json()
    (payment,) = mp_fake.payments.values()
    sent = parse_datetime(payment["date_of_expiration"])
    assert sent - timezone.now() > timedelta(minutes=30)
    assert abs(parse_datetime(body["expires_at"]) - sent) < timedelta(seconds=1)


def test_anonymous_cannot_pay_from_a_wallet(client, test_purpose):
    response = create_session(
        client, key="w-1", purpose="test_purchase", provider="wallet", params={"item": "tea"}
    )
    assert response.status_code == 403
    assert not PaymentSession.objects.exists()
