"""Staff "Record a refund" of a payment made from wallet credit gives the credit back to the
wallet, in the same transaction, once, naming the staff member and the reason."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from notifications.models import Event
from payments.models import AuditSource, LedgerEntry, LedgerKind, PaymentStatus
from payments.services import (
    ConfirmOutcome,
    payment_confirm,
    payment_fulfil,
    payment_refund,
    payment_session_create,
    wallet_account_get,
    wallet_adjust,
)
from payments.services.confirmation import Evidence
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/payments/paymentsession/"


def paid_with_credit(user):
    session = payment_session_create(
        user=user,
        purpose="test_purchase",
        provider="wallet",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at is not None
    return session


def credited_user(amount="25.00"):
    user = UserFactory()
    wallet_adjust(user=user, amount=Decimal(amount), actor=UserFactory(), reason="credit")
    return user


def record_refund(client, session, reason):
    return client.post(
        URL,
        {
            "action": "record_refund",
            ACTION_CHECKBOX_NAME: [session.pk],
            "apply": "1",
            "reason": reason,
        },
    )


def test_recording_a_refund_in_the_admin_gives_the_credit_back_once(staff_client, test_purpose):
    customer = credited_user()
    session = paid_with_credit(customer)
    assert wallet_account_get(user=customer).balance == Decimal("15.00")

    record_refund(staff_client, session, "customer changed their mind")

    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED and not session.refund_due
    assert wallet_account_get(user=customer).balance == Decimal("25.00")
    entry = LedgerEntry.objects.get(session=session, kind=LedgerKind.REFUND)
    assert entry.amount == Decimal("10.00") and entry.balance_after == Decimal("25.00")
    assert entry.actor == staff_client.user
    assert entry.reason == "refund recorded: customer changed their mind"
    returned = session.audits.get(action="credit_returned")
    assert (returned.source, returned.actor, returned.reason) == (
        AuditSource.STAFF,
        staff_client.user,
        "customer changed their mind",
    )
    assert returned.data["ledger_entry"] == entry.pk
    assert returned.data["amount"] == "10.00"
    assert session.audits.get(action="refund").actor == staff_client.user
    assert Event.objects.filter(
        audience=f"user:{customer.pk}", type="payment.refunded", payload__reason="credit_returned"
    ).exists()

    # A second refund does nothing; nor can a later rerun of fulfilment give it back again.
    record_refund(staff_client, session, "clicked twice")
    again = payment_refund(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=staff_client.user, reason="again"),
    )
    assert again.outcome == ConfirmOutcome.ALREADY_PROCESSED
    fulfil = payment_fulfil(
        reference=session.reference, evidence=Evidence(source=AuditSource.RECONCILER)
    )
    assert fulfil.outcome == ConfirmOutcome.ALREADY_PROCESSED
    assert LedgerEntry.objects.filter(session=session, kind=LedgerKind.REFUND).count() == 1
    assert session.audits.filter(action="credit_returned").count() == 1
    assert wallet_account_get(user=customer).balance == Decimal("25.00")


def test_a_refund_of_a_wallet_payment_whose_delivery_failed_returns_its_credit(test_purpose):
    """The case the automatic return could no longer reach: fulfilment failed, staff
    record a refund instead of retrying."""
    customer, staff = credited_user(), UserFactory(roles=["staff"])
    test_purpose.failing = True
    session = payment_session_create(
        user=customer,
        purpose="test_purchase",
        provider="wallet",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at is None

    result = payment_refund(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=staff, reason="machine broken"),
    )

    assert result.outcome == ConfirmOutcome.CHANGED
    assert wallet_account_get(user=customer).balance == Decimal("25.00")
    assert session.audits.get(action="credit_returned").actor == staff


def test_a_refund_of_a_provider_payment_moves_no_credit(staff_client, test_purpose):
    customer = credited_user()
    session = payment_session_create(
        user=customer,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session
    payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount,
        currency=session.currency,
    )
    record_refund(staff_client, session, "refunded at the terminal")
    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    assert not LedgerEntry.objects.filter(session=session).exists()
    assert not session.audits.filter(action="credit_returned").exists()
    assert wallet_account_get(user=customer).balance == Decimal("25.00")


def record_refund_of(client, session, reason, amount):
    return client.post(
        URL,
        {
            "action": "record_refund",
            ACTION_CHECKBOX_NAME: [session.pk],
            "apply": "1",
            "reason": reason,
            "amount": amount,
        },
        follow=True,
    )


def test_a_partial_refund_of_a_credit_payment_is_refused_and_changes_nothing(
    staff_client, test_purpose
):
    customer = credited_user()
    session = paid_with_credit(customer)

    response = record_refund_of(staff_client, session, "half back", "4.00")

    html = response.content.decode()
    assert "A payment made from credit can only be refunded in full: 10.00 BRL go back" in html
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert wallet_account_get(user=customer).balance == Decimal("15.00")
    assert not LedgerEntry.objects.filter(session=session, kind=LedgerKind.REFUND).exists()
    assert not session.audits.filter(action__in=["refund", "credit_returned"]).exists()

    # The full amount, typed out, is the same as leaving it empty.
    record_refund_of(staff_client, session, "all back", "10.00")
    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    assert wallet_account_get(user=customer).balance == Decimal("25.00")
    assert LedgerEntry.objects.get(session=session, kind=LedgerKind.REFUND).amount == Decimal(
        "10.00"
    )


def test_a_provider_refund_keeps_the_amount_staff_recorded(staff_client, test_purpose):
    session = payment_session_create(
        user=UserFactory(),
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session
    payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount,
        currency=session.currency,
    )

    record_refund_of(staff_client, session, "part refunded at the terminal", "4.00")

    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    audit = session.audits.get(action="refund")
    assert audit.data["amount"] == "4.00" and audit.actor == staff_client.user


def test_the_refund_action_says_what_it_does_for_each_kind_of_payment(staff_client, test_purpose):
    session = paid_with_credit(credited_user())

    changelist = staff_client.get(URL).content.decode()
    assert '<option value="record_refund">Record a refund</option>' in changelist
    assert "made at the provider" not in changelist

    form = staff_client.post(
        URL, {"action": "record_refund", ACTION_CHECKBOX_NAME: [session.pk]}
    ).content.decode()
    assert "<h1>Record a refund</h1>" in form and 'name="amount"' in form
    assert "For a payment made from credit, the credit goes back to the customer" in form
