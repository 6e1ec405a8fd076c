"""Coinbase Commerce: a charge through the Charge API (fake), webhooks signed over the raw
body, `event.id` as the idempotency key."""

import pytest

from fakeproviders.billing import coinbase_event_body
from payments.models import DeliveryStatus, WebhookDelivery, WebhookRefusal
from subscriptions.models import Subscription, SubscriptionEvent
from tests.subscriptions.conftest import CB_KEY, checkout, post_coinbase

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(billing, plans, customer):
    return checkout(customer, plans["usd"], "coinbase")


def event(billing, session, type_: str, **kwargs) -> dict:
    return coinbase_event_body(
        billing.coinbase_charge(session.provider_payment_id), type_, **kwargs
    )


def test_checkout_creates_a_charge(session, billing):
    charge = billing.coinbase_charge(session.provider_payment_id)
    assert charge["metadata"] == {"reference": session.reference}
    assert charge["pricing"]["local"] == {"amount": "9.99", "currency": "USD"}
    assert session.provider_data["redirect_url"] == charge["hosted_url"]
    assert "reference=" + session.reference in charge["redirect_url"]
    assert CB_KEY  # the fake refuses charges without the key (see test_fake_billing)


def test_pending_then_confirmed_activates(client, session, billing, customer):
    assert post_coinbase(client, event(billing, session, "charge:created")).json()["status"] == (
        "ignored"
    )
    post_coinbase(client, event(billing, session, "charge:pending"))
    session.refresh_from_db()
    assert session.status == "processing"
    response = post_coinbase(client, event(billing, session, "charge:confirmed"))
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilled_at is not None
    assert Subscription.objects.get(user=customer).status == "active"


def test_event_id_is_the_idempotency_key(client, session, billing, customer):
    body = event(
        billing, session, "charge:confirmed", event_id="a1b2c3d4-0000-4000-8000-000000000001"
    )
    assert post_coinbase(client, body).json()["status"] == "processed"
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_id == "a1b2c3d4-0000-4000-8000-000000000001"
    # Coinbase's retry of the event (another delivery id, same event id) is answered as a
    # duplicate of the stored delivery, and only counted.
    retry = dict(body, id="another-delivery-id", attempt_number=2)
    assert post_coinbase(client, retry).json() == {"status": "duplicate", "delivery": delivery.pk}
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert WebhookRefusal.objects.get(provider="coinbase", reason="duplicate event").count == 1
    assert SubscriptionEvent.objects.filter(user=customer).count() == 1


def test_failed_charge_fails_the_session(client, session, billing):
    post_coinbase(client, event(billing, session, "charge:failed"))
    session.refresh_from_db()
    assert session.status == "failed"


def test_bad_signatures_change_nothing(client, session, billing, settings):
    body = event(billing, session, "charge:confirmed")
    assert post_coinbase(client, body, secret="forged").status_code == 401
    assert post_coinbase(client, body, signature="").status_code == 401
    import json

    raw = json.dumps(body).encode()
    from fakeproviders.billing import coinbase_sign

    signature = coinbase_sign(raw, "coinbase-webhook-secret-for-tests")
    altered = raw.replace(b'"9.99"', b'"0.01"')
    assert post_coinbase(client, altered, signature=signature).status_code == 401
    settings.COINBASE_COMMERCE_WEBHOOK_SECRET = ""
    assert post_coinbase(client, body).status_code == 401
    session.refresh_from_db()
    assert session.status == "pending"
    assert not WebhookDelivery.objects.exists()
    refusals = WebhookRefusal.objects.filter(provider="coinbase", reason="invalid signature")
    assert sum(refusals.values_list("count", flat=True)) == 4


def test_malformed_event_is_rejected(client, session):
    assert post_coinbase(client, b'{"id": 1}').status_code == 400
    assert post_coinbase(client, b"not json").status_code == 400
    assert (
        post_coinbase(client, {"event": {"type": "charge:confirmed", "data": {}}}).status_code
        == 400
    )
    assert not WebhookDelivery.objects.exists()
    refusals = WebhookRefusal.objects.filter(provider="coinbase", reason="malformed payload")
    assert sum(refusals.values_list("count", flat=True)) == 3
