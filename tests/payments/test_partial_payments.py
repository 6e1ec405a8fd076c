"""A crypto payment that arrives short of the price (NOWPayments `partially_paid`): the
customer is told what arrived, what is missing and what to do; staff see it held and
accept it (the session confirmed through the one path) or record its refund."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from fakeproviders.billing import RawNumber
from notifications.models import Event
from payments.models import PartialPayment, PaymentSession, PaymentStatus
from payments.selectors import payments_health
from payments.services.monitor import gaps_find
from subscriptions.models import Subscription
from tests.subscriptions.conftest import *  # noqa: F403 - billing, plans, customer
from tests.subscriptions.conftest import checkout, post_nowpayments
from tests.subscriptions.test_nowpayments import ipn

pytestmark = pytest.mark.django_db

ADMIN = "/admin/payments/partialpayment/"


@pytest.fixture
def session(billing, plans, customer):
    return checkout(customer, plans["usd"], "nowpayments")


def short(session, paid="0.00003"):
    return ipn(session, "partially_paid", actually_paid=RawNumber(paid))


def held(session) -> int:
    rows = {(r["purpose"], r["provider"]): r for r in payments_health()}
    return rows[(session.purpose, session.provider)]["held"]


def test_partial_payment_is_explained_to_the_customer_and_held(client, session, customer):
    since = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    assert post_nowpayments(client, short(session)).json()["status"] == "processed"
    session.refresh_from_db()
    assert session.status == PaymentStatus.PROCESSING and session.fulfilled_at is None
    partial = PartialPayment.objects.get(session=session)
    assert (partial.paid_text, partial.due_text, partial.missing_text, partial.coin) == (
        "0.00003",
        "0.0000635",
        "0.0000335",
        "BTC",
    )
    assert session.audits.filter(action="partially_paid").count() == 1
    pushed = Event.objects.get(
        id__gt=since, type="payment.partially_paid", audience=f"user:{customer.pk}"
    )
    assert (pushed.payload["paid"], pushed.payload["missing"]) == ("0.00003", "0.0000335")

    client.force_login(customer)
    for url in (
        f"/billing/return/state/?reference={session.reference}",
        f"/payments/{session.reference}/status/",
    ):
        page = client.get(url).content.decode()
        assert "Part of your payment arrived." in page
        assert "We received 0.00003 BTC of the 0.0000635 BTC this payment needed." in page
        assert "0.0000335 BTC are missing." in page
        assert "Please do not pay again." in page
        assert "confirming it" not in page and "Waiting for payment" not in page

    # Counted as held on the health page, and listed as a gap for staff.
    assert held(session) == 1
    gaps, _ = gaps_find()
    assert [(g.kind, g.reference) for g in gaps] == [("partially_paid", session.reference)]


def test_the_same_partial_notice_twice_changes_nothing_and_a_larger_one_updates(client, session):
    notice = short(session)
    post_nowpayments(client, notice)
    again = post_nowpayments(client, {**notice, "updated_at": "2026-11-22T11:00:00.000Z"})
    assert again.json()["status"] == "duplicate"
    assert session.audits.filter(action="partially_paid").count() == 1
    post_nowpayments(client, short(session, paid="0.00005"))
    partial = PartialPayment.objects.get(session=session)
    assert (partial.paid_text, partial.missing_text) == ("0.00005", "0.0000135")
    assert session.audits.filter(action="partially_paid").count() == 2


def test_the_rest_arriving_completes_it_and_it_is_no_longer_held(client, session, customer):
    post_nowpayments(client, short(session))
    post_nowpayments(client, ipn(session, "finished"))
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert held(session) == 0
    client.force_login(customer)
    page = client.get(f"/billing/return/state/?reference={session.reference}").content.decode()
    assert "Your subscription is active." in page and "We received" not in page


def test_staff_accept_a_partial_payment_with_a_reason(client, staff_client, session, customer):
    post_nowpayments(client, short(session))
    partial = PartialPayment.objects.get(session=session)
    data = {"action": "accept", ACTION_CHECKBOX_NAME: [partial.pk]}
    assert b"Reason" in staff_client.post(ADMIN, data).content
    staff_client.post(ADMIN, {**data, "apply": "1", "reason": ""})
    session.refresh_from_db()
    assert session.status == PaymentStatus.PROCESSING  # a reason is required

    staff_client.post(ADMIN, {**data, "apply": "1", "reason": "customer paid the rest in cash"})
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert Subscription.objects.get(user=customer).status == "active"
    completed = session.audits.get(action="completed")
    assert (completed.source, completed.actor, completed.reason) == (
        "staff",
        staff_client.user,
        "customer paid the rest in cash",
    )
    assert completed.data["partial_payment"]["actually_paid"] == "0.00003"
    assert session.audits.get(action="partial_accepted").actor == staff_client.user
    partial.refresh_from_db()
    assert (partial.status, partial.resolved_by) == ("accepted", staff_client.user)
    assert held(session) == 0

    # Deciding twice is refused and changes nothing.
    staff_client.post(ADMIN, {**data, "apply": "1", "reason": "again"})
    assert session.audits.filter(action="completed").count() == 1


def test_staff_record_the_refund_of_a_partial_payment(client, staff_client, session, customer):
    post_nowpayments(client, short(session))
    partial = PartialPayment.objects.get(session=session)
    data = {"action": "record_refund", ACTION_CHECKBOX_NAME: [partial.pk]}
    staff_client.post(ADMIN, {**data, "apply": "1", "reason": "refunded in the NOWPayments panel"})
    session.refresh_from_db()
    assert session.status == PaymentStatus.CANCELLED and session.fulfilled_at is None
    assert not Subscription.objects.filter(user=customer, status="active").exists()
    refunded = session.audits.get(action="partial_refunded")
    assert (refunded.source, refunded.actor, refunded.reason) == (
        "staff",
        staff_client.user,
        "refunded in the NOWPayments panel",
    )
    assert session.audits.filter(action="cancelled", source="staff").exists()
    partial.refresh_from_db()
    assert partial.status == "refunded"
    assert held(session) == 0
    client.force_login(customer)
    page = client.get(f"/billing/return/state/?reference={session.reference}").content.decode()
    assert "The 0.00003 BTC that arrived were refunded to you." in page

    # Accepting it afterwards is refused: the decision stands.
    staff_client.force_login(staff_client.user)
    staff_client.post(
        ADMIN, {"action": "accept", ACTION_CHECKBOX_NAME: [partial.pk], "apply": "1", "reason": "x"}
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.CANCELLED


def test_partial_payment_admin_pages_render(client, staff_client, session):
    post_nowpayments(client, short(session))
    partial = PartialPayment.objects.get(session=session)
    listing = staff_client.get(ADMIN).content.decode()
    assert session.reference in listing and "0.00003 / 0.0000635" in listing
    assert staff_client.get(f"{ADMIN}{partial.pk}/change/").status_code == 200
    page = staff_client.get(f"/admin/payments/paymentsession/{session.pk}/change/")
    assert "0.00003 / 0.0000635" in page.content.decode()  # what arrived, inline


def test_a_partial_payment_for_an_expired_session_is_still_held_and_refundable(
    client, staff_client, session
):
    PaymentSession.objects.filter(pk=session.pk).update(status=PaymentStatus.EXPIRED)
    post_nowpayments(client, short(session))
    session.refresh_from_db()
    assert session.status == PaymentStatus.EXPIRED
    partial = PartialPayment.objects.get(session=session)
    assert partial.is_held and held(session) == 1

    data = {"action": "record_refund", ACTION_CHECKBOX_NAME: [partial.pk]}
    staff_client.post(ADMIN, {**data, "apply": "1", "reason": "refunded at the provider"})
    partial.refresh_from_db()
    session.refresh_from_db()
    assert partial.status == "refunded" and session.status == PaymentStatus.EXPIRED
    assert session.audits.get(action="partial_refunded").reason == "refunded at the provider"
    assert held(session) == 0


def test_a_partial_payment_paid_in_full_meanwhile_cannot_be_decided(client, staff_client, session):
    post_nowpayments(client, short(session))
    post_nowpayments(client, ipn(session, "finished"))
    partial = PartialPayment.objects.get(session=session)
    data = {"action": "record_refund", ACTION_CHECKBOX_NAME: [partial.pk]}
    page = staff_client.post(ADMIN, {**data, "apply": "1", "reason": "x"}, follow=True)
    assert "was paid in full meanwhile" in page.content.decode()
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert not session.audits.filter(source="staff").exists()
