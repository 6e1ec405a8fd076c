"""Click's prepare → complete sequence through the real webhook URLs, with every error
code Click defines that applies to us."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.db.models import Sum

from notifications.models import Event
from payments.models import DeliveryStatus, PaymentSession, WebhookDelivery, WebhookRefusal
from subscriptions.models import Subscription, SubscriptionEvent
from tests.subscriptions.conftest import (
    CLICK_MERCHANT,
    CLICK_SERVICE,
    checkout,
    click_form,
    post_click,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(billing, plans, customer):
    return checkout(customer, plans["uzs"], "click")


def prepare(client, session, **kwargs):
    return post_click(client, "prepare", click_form(session, 0, **kwargs)).json()


def complete(client, session, prepare_id, **kwargs):
    form = click_form(session, 1, merchant_prepare_id=str(prepare_id), **kwargs)
    return post_click(client, "complete", form).json()


def test_checkout_redirects_to_click_with_the_reference(session):
    url = urlparse(session.provider_data["redirect_url"])
    query = parse_qs(url.query)
    assert url.path == "/click/services/pay"
    assert query["transaction_param"] == [session.reference]
    assert query["service_id"] == [CLICK_SERVICE]
    assert query["merchant_id"] == [CLICK_MERCHANT]
    assert query["amount"] == ["49000.00"]
    assert "merchant_trans_id=" + session.reference in query["return_url"][0]


def test_prepare_then_complete_activates_the_subscription(client, session, customer):
    answer = prepare(client, session)
    assert answer["error"] == 0 and answer["error_note"] == "Success"
    assert answer["merchant_prepare_id"] == session.pk
    assert answer["click_trans_id"] == 900001
    assert answer["merchant_trans_id"] == session.reference
    session.refresh_from_db()
    assert session.status == "processing"
    assert session.provider_payment_id == "900001"

    answer = complete(client, session, answer["merchant_prepare_id"])
    assert answer["error"] == 0
    assert answer["merchant_confirm_id"] == session.pk
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilled_at is not None
    subscription = Subscription.objects.get(user=customer)
    assert subscription.status == "active" and subscription.tier == "basic"
    assert SubscriptionEvent.objects.get(payment_session=session).type == "activated"
    assert Event.objects.filter(
        audience=f"user:{customer.pk}", type="subscription.activated"
    ).exists()
    statuses = list(
        WebhookDelivery.objects.filter(provider="click")
        .order_by("pk")
        .values_list("endpoint", "status", "signature_valid")
    )
    assert statuses == [
        ("click/prepare", DeliveryStatus.PROCESSED, True),
        ("click/complete", DeliveryStatus.PROCESSED, True),
    ]


def test_amount_is_signed_as_received(client, session):
    # Click may send "49000" or "49000.00": the sign is over the raw text, the value compared.
    answer = prepare(client, session, amount="49000.00")
    assert answer["error"] == 0
    assert complete(client, session, session.pk, amount="49000")["error"] == 0


def test_minus_1_bad_signature_changes_nothing(client, session):
    forged = click_form(session, 0, secret_key="not-the-secret")
    tampered = click_form(session, 0, amount="1")
    tampered["amount"] = "49000"  # signed for 1, sent as 49000
    other_service = click_form(session, 0, service_id="999")
    for form in (forged, tampered, other_service):
        response = post_click(client, "prepare", form)
        # In Click's terms: HTTP 200 (an HTTP error reads as an outage to Click), code -1.
        assert response.status_code == 200 and response.json()["error"] == -1
    session.refresh_from_db()
    assert session.status == "pending" and session.provider_payment_id == ""
    # Refused before anything is stored: only counted.
    assert not WebhookDelivery.objects.filter(provider="click").exists()
    refusals = WebhookRefusal.objects.filter(provider="click", reason="invalid signature")
    assert refusals.aggregate(total=Sum("count"))["total"] == 3
    assert set(refusals.values_list("response_status", flat=True)) == {200}  # as Click was told


def test_minus_1_when_no_secret_is_configured(client, session, settings):
    settings.CLICK_SECRET_KEY = ""
    assert prepare(client, session)["error"] == -1


def test_minus_2_wrong_amount(client, session):
    answer = prepare(client, session, amount="100")
    assert answer["error"] == -2 and answer["error_note"] == "Incorrect parameter amount"
    session.refresh_from_db()
    assert session.status == "pending"
    prepare(client, session)
    assert complete(client, session, session.pk, amount="48999.99")["error"] == -2
    session.refresh_from_db()
    assert session.status == "processing"


def test_minus_3_action_not_found(client, session):
    # A complete posted to the prepare URL, and an action Click does not have.
    form = click_form(session, 1, merchant_prepare_id=str(session.pk))
    assert post_click(client, "prepare", form).json()["error"] == -3
    assert post_click(client, "prepare", click_form(session, 7)).json()["error"] == -3
    session.refresh_from_db()
    assert session.status == "pending"


def test_minus_4_already_paid_and_fulfilled_once(client, session, customer):
    prepare(client, session)
    assert complete(client, session, session.pk)["error"] == 0
    end = Subscription.objects.get(user=customer).current_period_end
    again = complete(client, session, session.pk)
    assert again["error"] == -4 and again["error_note"] == "Already paid"
    assert prepare(client, session)["error"] == -4
    assert Subscription.objects.get(user=customer).current_period_end == end
    assert SubscriptionEvent.objects.filter(payment_session=session).count() == 1
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DUPLICATE).count() == 2


def test_minus_5_unknown_reference(client, billing, plans):
    answer = prepare(client, "no-such-reference")
    assert answer["error"] == -5 and answer["error_note"] == "User does not exist"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_minus_6_unknown_prepare_id(client, session):
    # Complete without any prepare, then with a prepare id that is not ours.
    assert complete(client, session, session.pk)["error"] == -6
    prepare(client, session)
    assert complete(client, session, session.pk + 1000)["error"] == -6
    assert complete(client, session, session.pk, trans_id="900002")["error"] == -6
    session.refresh_from_db()
    assert session.status == "processing"


def test_minus_8_missing_parameters(client, session):
    form = click_form(session, 0)
    del form["sign_time"]
    assert post_click(client, "prepare", form).json()["error"] == -8
    form = click_form(session, 1)  # complete without merchant_prepare_id
    assert post_click(client, "complete", form).json()["error"] == -8
    as_json = client.post(
        "/webhooks/click/prepare/", data=click_form(session, 0), content_type="application/json"
    )
    assert as_json.status_code == 200 and as_json.json()["error"] == -8
    session.refresh_from_db()
    assert session.status == "pending"


def test_minus_9_click_error_cancels_the_session(client, session, customer):
    prepare(client, session)
    answer = complete(client, session, session.pk, error="-5017", error_note="Cancelled")
    assert answer["error"] == -9 and answer["error_note"] == "Transaction cancelled"
    session.refresh_from_db()
    assert session.status == "cancelled"
    # Anything later about this session is answered as cancelled; nothing is activated.
    assert prepare(client, session, trans_id="900003")["error"] == -9
    assert complete(client, session, session.pk)["error"] == -9
    assert not Subscription.objects.filter(user=customer, status="active").exists()


def test_click_is_offered_only_for_soum_plans(billing, plans, customer):
    from payments.errors import UnsupportedProvider

    with pytest.raises(UnsupportedProvider):
        checkout(customer, plans["usd"], "click")
    assert not PaymentSession.objects.exists()


def test_a_new_click_attempt_replaces_an_unfinished_one(client, session):
    prepare(client, session, trans_id="900010")
    assert prepare(client, session, trans_id="900011")["error"] == 0
    assert complete(client, session, session.pk, trans_id="900010")["error"] == -6
    assert complete(client, session, session.pk, trans_id="900011")["error"] == 0
