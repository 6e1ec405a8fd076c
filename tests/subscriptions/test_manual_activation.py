"""Staff activate any user by hand — from the admin, from a failed payment, from the API —
whether or not the user ever had a subscription row; always audited, never twice for one
payment."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Event
from payments.models import AuditSource, PaymentAudit
from payments.registry import purpose_get
from payments.services.confirmation import Evidence, payment_confirm, payment_fulfil
from payments.services.monitor import gaps_find
from subscriptions.errors import SubscriptionError
from subscriptions.models import Plan, Subscription, SubscriptionEvent
from subscriptions.services.plans import subscription_activate_manually
from tests.factories import UserFactory
from tests.subscriptions.conftest import checkout

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/subscriptions/subscription/add/"
API_URL = "/api/subscriptions/activations/"


@pytest.fixture
def staff(db):
    return UserFactory(roles=["staff"], is_staff=True, is_superuser=True)


@pytest.fixture
def failed_payment(billing, plans, customer):
    """A completed plan payment whose first activation failed: the plan's code was changed
    after checkout, fulfilment raised, and its savepoint took the new subscription row with
    it — the user has no subscription at all."""
    session = checkout(customer, plans["uzs"], "click")
    Plan.objects.filter(pk=plans["uzs"].pk).update(code="basic-uzs-2026")
    result = payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount,
        currency=session.currency,
        provider_payment_id="click-77",
    )
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilment_error
    assert not result.fulfilled
    assert not Subscription.objects.filter(user=customer).exists()
    plans["uzs"].refresh_from_db()
    return session


def _gap_references() -> set[str]:
    gaps, _count = gaps_find()
    return {gap.reference for gap in gaps}


# --- admin -------------------------------------------------------------------------------------


def test_admin_activates_a_user_who_never_had_a_subscription(client, staff, plans, customer):
    client.force_login(staff)
    page = client.get(ADD_URL)
    assert page.status_code == 200
    assert b'id="activate-form"' in page.content and b'name="payment_session"' in page.content
    form = {"user": customer.pk, "plan": plans["usd"].pk, "days": 10}
    refused = client.post(ADD_URL, form)  # no reason: the form again, nothing done
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert not Subscription.objects.filter(user=customer).exists()

    response = client.post(ADD_URL, {**form, "reason": "paid by bank transfer"})
    subscription = Subscription.objects.get(user=customer)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/subscriptions/subscription/{subscription.pk}/change/"
    assert (subscription.status, subscription.plan, subscription.tier) == (
        "active",
        plans["usd"],
        "pro",
    )
    remaining = subscription.current_period_end - timezone.now()
    assert timedelta(days=9, hours=23) < remaining <= timedelta(days=10)
    event = SubscriptionEvent.objects.get(user=customer)
    assert (event.type, event.actor, event.actor_type, event.reason) == (
        "manual_activation",
        staff,
        "staff",
        "paid by bank transfer",
    )
    assert event.data["change"] == "activated" and event.payment_session is None
    pushed = Event.objects.get(audience=f"user:{customer.pk}", type="subscription.activated")
    assert pushed.payload["status"] == "active" and pushed.payload["plan"] == "pro-usd"


def test_admin_activation_from_the_failed_payment(client, staff, plans, customer, failed_payment):
    client.force_login(staff)
    assert failed_payment.reference in _gap_references()  # "paid but not active"
    page = client.get(f"{ADD_URL}?payment_session={failed_payment.reference}")
    form = page.context["form"]
    assert form.initial["user"] == customer.pk
    assert form.initial["payment_session"] == failed_payment.reference
    response = client.post(
        ADD_URL,
        {
            "user": customer.pk,
            "payment_session": failed_payment.reference,
            "plan": plans["uzs"].pk,
            "days": 30,
            "reason": "runbook: paid, activation failed",
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get(user=customer)
    assert subscription.status == "active" and subscription.last_payment_at is not None
    event = SubscriptionEvent.objects.get(user=customer)
    assert (event.type, event.payment_session, event.actor) == (
        "manual_activation",
        failed_payment,
        staff,
    )
    # The payment now counts as delivered: no longer a gap, and re-running its fulfilment
    # (the reconciler's repair) does not extend the period a second time.
    assert purpose_get("subscription").is_fulfilled(session=failed_payment)
    assert failed_payment.reference not in _gap_references()
    failed_payment.refresh_from_db()
    assert failed_payment.fulfilled_at is not None and failed_payment.fulfilment_error == ""
    audit = PaymentAudit.objects.filter(session=failed_payment).latest("id")
    assert (audit.action, audit.source, audit.actor, audit.reason) == (
        "fulfilled",
        "staff",
        staff,
        "runbook: paid, activation failed",
    )
    end = subscription.current_period_end
    payment_fulfil(
        reference=failed_payment.reference,
        evidence=Evidence(source=AuditSource.RECONCILER),
    )
    subscription.refresh_from_db()
    assert subscription.current_period_end == end
    assert SubscriptionEvent.objects.filter(user=customer).count() == 1

    # The same payment cannot stand for a second activation.
    again = client.post(
        ADD_URL,
        {
            "user": customer.pk,
            "payment_session": failed_payment.reference,
            "plan": plans["uzs"].pk,
            "days": 30,
            "reason": "twice",
        },
    )
    assert again.status_code == 200
    assert b"has already activated the subscription" in again.content
    subscription.refresh_from_db()
    assert subscription.current_period_end == end


def test_admin_activation_refuses_a_payment_that_does_not_fit(
    client, staff, billing, plans, customer
):
    client.force_login(staff)
    other = UserFactory()
    pending = checkout(customer, plans["uzs"], "click")
    theirs = checkout(other, plans["uzs"], "click")
    for reference, message in (
        ("ps_nope", b"There is no payment with this reference."),
        (pending.reference, b"is not completed"),
    ):
        page = client.post(
            ADD_URL,
            {
                "user": customer.pk,
                "payment_session": reference,
                "plan": plans["uzs"].pk,
                "days": 30,
                "reason": "x",
            },
        )
        assert page.status_code == 200 and message in page.content, reference
    page = client.post(
        ADD_URL,
        {
            "user": customer.pk,
            "payment_session": theirs.reference,
            "plan": plans["uzs"].pk,
            "days": 30,
            "reason": "x",
        },
    )
    assert b"was made by another user" in page.content
    assert not Subscription.objects.exists() and not SubscriptionEvent.objects.exists()


def test_add_page_needs_the_change_permission(client, plans, customer):
    clerk = UserFactory(is_staff=True)  # admin access, no subscription permissions
    client.force_login(clerk)
    assert client.get(ADD_URL).status_code == 403
    response = client.post(
        ADD_URL, {"user": customer.pk, "plan": plans["uzs"].pk, "days": 5, "reason": "x"}
    )
    assert response.status_code == 403
    assert not Subscription.objects.exists()


# --- API ---------------------------------------------------------------------------------------


def post(client, body) -> tuple[int, dict]:
    response = client.post(API_URL, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_api_activates_a_user_without_a_subscription(client, staff, plans, customer):
    client.force_login(staff)
    status, body = post(
        client,
        {"user": customer.username, "plan": "pro-usd", "days": 7, "reason": "script"},
    )
    assert status == 201, body
    subscription = Subscription.objects.get(user=customer)
    assert body["user"] == customer.pk and body["status"] == "active"
    assert body["plan"] == "pro-usd" and body["change"] == "activated"
    assert body["event"] == SubscriptionEvent.objects.get(user=customer).pk
    remaining = subscription.current_period_end - timezone.now()
    assert timedelta(days=6, hours=23) < remaining <= timedelta(days=7)
    event = SubscriptionEvent.objects.get(pk=body["event"])
    assert (event.type, event.actor, event.reason) == ("manual_activation", staff, "script")


def test_api_activation_for_a_failed_payment_takes_its_user_and_plan(
    client, staff, plans, customer, failed_payment
):
    client.force_login(staff)
    # The plan's code changed after checkout: it must be named; user and days come from
    # the payment and the plan.
    status, body = post(client, {"payment_session": failed_payment.reference, "reason": "r"})
    assert status == 400 and body["error"]["code"] == "plan_required"
    assert not Subscription.objects.filter(user=customer).exists()
    status, body = post(
        client,
        {"payment_session": failed_payment.reference, "plan": "basic-uzs-2026", "reason": "r"},
    )
    assert status == 201, body
    event = SubscriptionEvent.objects.get(user=customer)
    assert event.payment_session == failed_payment and event.data["days"] == 30
    status, body = post(
        client,
        {"payment_session": failed_payment.reference, "plan": "basic-uzs-2026", "reason": "r"},
    )
    assert status == 400 and body["error"]["code"] == "payment_already_activated"
    assert SubscriptionEvent.objects.filter(user=customer).count() == 1


def test_api_plan_defaults_to_the_paid_plan(client, staff, billing, plans, customer):
    """A payment held for review (it paid less than the price) activates nothing; staff who
    accept it activate by hand, and plan and period default to what was paid for."""
    session = checkout(customer, plans["uzs"], "click")
    payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount - 1,
        currency=session.currency,
        provider_payment_id="click-78",
    )
    session.refresh_from_db()
    assert session.status == "completed" and session.amount_mismatch
    assert Subscription.objects.get(user=customer).status == "inactive"
    client.force_login(staff)
    status, body = post(client, {"payment_session": session.reference, "reason": "accepted"})
    assert status == 201, body
    assert body["plan"] == "basic-uzs" and body["user"] == customer.pk
    event = SubscriptionEvent.objects.get(user=customer, type="manual_activation")
    assert event.data["days"] == 30 and event.payment_session == session
    # Activating it by hand accepted the review, on the payment's own audit too.
    session.refresh_from_db()
    assert not session.amount_mismatch and session.fulfilled_at is not None
    accepted = PaymentAudit.objects.get(session=session, action="review_accepted")
    assert (accepted.actor, accepted.reason) == (staff, "accepted")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": "pro-usd", "days": 5}, "reason"),
        ({"plan": "pro-usd", "days": 5, "reason": "  "}, "reason"),
        ({"user": "nobody-here", "plan": "pro-usd", "days": 5, "reason": "r"}, "user"),
        ({"user": "{customer}", "plan": "nope", "days": 5, "reason": "r"}, "plan"),
        ({"user": "{customer}", "plan": "pro-usd", "days": 0, "reason": "r"}, "days"),
        ({"user": "{customer}", "plan": "pro-usd", "days": 99999, "reason": "r"}, "days"),
        ({"user": "{customer}", "plan": "pro-usd", "days": "ten", "reason": "r"}, "days"),
        ({"user": "{customer}", "days": 5, "reason": "r"}, "plan"),
        ({"plan": "pro-usd", "days": 5, "reason": "r"}, "user"),
        (
            {"user": "{customer}", "plan": "pro-usd", "payment_session": "ps_x", "reason": "r"},
            "payment_session",
        ),
        ({"user": "a\x00b", "plan": "pro-usd", "reason": "r"}, "user"),
    ],
)
def test_api_bad_input_is_a_clear_400_and_changes_nothing(
    client, staff, plans, customer, body, field
):
    client.force_login(staff)
    body = {k: v.format(customer=customer.pk) if k == "user" else v for k, v in body.items()}
    status, answer = post(client, body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid"
    assert field in answer["error"]["details"], answer
    assert all(isinstance(m, str) and m for m in answer["error"]["details"][field])
    assert not Subscription.objects.exists() and not SubscriptionEvent.objects.exists()


def test_api_refuses_a_payment_that_is_not_completed(client, staff, billing, plans, customer):
    session = checkout(customer, plans["uzs"], "click")
    client.force_login(staff)
    status, body = post(client, {"payment_session": session.reference, "reason": "r"})
    assert status == 400 and body["error"]["code"] == "payment_not_completed"
    assert session.reference in body["error"]["message"]
    assert not Subscription.objects.exists()


def test_api_is_for_staff_only(client, plans, customer):
    body = {"user": str(customer.pk), "plan": "pro-usd", "days": 5, "reason": "r"}
    assert post(client, body)[0] == 403  # anonymous
    for user in (customer, UserFactory(roles=["cashier"]), UserFactory(is_staff=True)):
        client.force_login(user)
        status, answer = post(client, body)
        assert status == 403 and answer["error"]["code"] in (
            "permission_denied",
            "not_authenticated",
        )
    assert not Subscription.objects.exists()


def test_api_is_in_the_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/subscriptions/activations/"]["post"]
    assert set(operation["responses"]) == {"201", "400", "403"}
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = request.rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][name]["properties"]) == {
        "user",
        "plan",
        "days",
        "reason",
        "payment_session",
    }


def test_service_refuses_without_user_or_plan(staff, plans, customer):
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(plan=plans["uzs"], days=3, actor=staff, reason="r")
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(user=customer, days=3, actor=staff, reason="r")
    with pytest.raises(SubscriptionError):
        subscription_activate_manually(
            user=customer, plan=plans["uzs"], days=True, actor=staff, reason="r"
        )
    assert not Subscription.objects.exists()


def test_from_the_payment_session_admin_to_the_filled_in_form(
    client, staff, plans, customer, failed_payment
):
    client.force_login(staff)
    changelist = "/admin/payments/paymentsession/"
    page = client.get(changelist)
    assert b'value="activate_subscription_for_payment"' in page.content
    response = client.post(
        changelist,
        {"action": "activate_subscription_for_payment", "_selected_action": [failed_payment.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{ADD_URL}?payment_session={failed_payment.reference}"
    form = client.get(response["Location"]).context["form"]
    assert form.initial == {"payment_session": failed_payment.reference, "user": customer.pk}
    # Two payments, or a payment of another purpose: an error, no form.
    other = checkout(customer, plans["usd"], "nowpayments")
    refused = client.post(
        changelist,
        {
            "action": "activate_subscription_for_payment",
            "_selected_action": [failed_payment.pk, other.pk],
        },
        follow=True,
    )
    assert b"Select exactly one plan payment" in refused.content
    assert not Subscription.objects.filter(user=customer).exists()


def test_subscriptions_list_offers_activating_any_user(client, staff):
    client.force_login(staff)
    page = client.get("/admin/subscriptions/subscription/")
    assert b'id="activate-user"' in page.content and f'href="{ADD_URL}"'.encode() in page.content


def test_the_user_field_finds_users_as_staff_type(client, staff, customer):
    client.force_login(staff)
    found = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "subscriptions",
            "model_name": "subscription",
            "field_name": "user",
            "term": customer.username,
        },
    )
    assert found.status_code == 200
    assert [r["id"] for r in found.json()["results"]] == [str(customer.pk)]
