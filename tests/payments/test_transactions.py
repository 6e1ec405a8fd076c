"""The confirmation path owns its transaction; wallet credit refused is given back at once."""

from decimal import Decimal

import pytest
from django.db import transaction

from notifications.models import Alert, Event
from payments.models import AuditSource, LedgerEntry, LedgerKind, PaymentSession, PaymentStatus
from payments.services import (
    ConfirmOutcome,
    payment_confirm,
    payment_fulfil,
    payment_refund,
    wallet_account_get,
    wallet_adjust,
)
from payments.services.confirmation import Evidence
from payments.services.transactions import TransactionContractError
from tests.factories import UserFactory
from tests.payments.test_confirmation import purchase

pytestmark = pytest.mark.django_db

WEBHOOK = Evidence(source=AuditSource.WEBHOOK)
RECONCILER = Evidence(source=AuditSource.RECONCILER)


def credited_user(amount="25.00"):
    user = UserFactory()
    wallet_adjust(user=user, amount=Decimal(amount), actor=UserFactory(), reason="credit")
    return user


# --- The transaction contract ------------------------------------------------------------


def test_a_confirmation_refuses_to_run_inside_a_callers_transaction(test_purpose):
    session = purchase()
    with (
        pytest.raises(TransactionContractError, match="owns its transaction"),
        transaction.atomic(),
    ):
        payment_confirm(
            reference=session.reference,
            evidence=WEBHOOK,
            amount=session.amount,
            currency=session.currency,
        )
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
    assert not session.audits.filter(action="completed").exists()

    # Called as it must be, it records the money.
    result = payment_confirm(
        reference=session.reference,
        evidence=WEBHOOK,
        amount=session.amount,
        currency=session.currency,
    )
    assert result.outcome == ConfirmOutcome.CONFIRMED and result.fulfilled


def test_fulfil_refund_and_wallet_purchases_own_their_transaction_too(test_purpose):
    session = purchase()
    payment_confirm(
        reference=session.reference, evidence=WEBHOOK, amount=Decimal("10.00"), currency="BRL"
    )
    user = credited_user()
    calls = [
        lambda: payment_fulfil(reference=session.reference, evidence=RECONCILER),
        lambda: payment_refund(reference=session.reference, evidence=WEBHOOK),
        lambda: purchase(user, provider="wallet"),
    ]
    for call in calls:
        with pytest.raises(TransactionContractError), transaction.atomic():
            call()
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    assert not PaymentSession.objects.filter(user=user).exists()


# --- Wallet credit is Confirma's own money ---------------------------------------------------


def test_a_refused_wallet_payment_gives_the_credit_back_at_once(
    test_purpose, django_capture_on_commit_callbacks
):
    user = credited_user()
    test_purpose.refusing = True
    with django_capture_on_commit_callbacks(execute=True):
        session = purchase(user, provider="wallet")

    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    assert not session.refund_due and session.fulfilled_at is None
    assert session.fulfilment_error == "refused: already delivered by another payment"
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    spent, returned = LedgerEntry.objects.filter(session=session).order_by("id")
    assert (spent.kind, spent.amount) == (LedgerKind.SPEND, Decimal("-10.00"))
    assert (returned.kind, returned.amount) == (LedgerKind.REFUND, Decimal("10.00"))
    assert returned.balance_after == Decimal("25.00")
    assert returned.reason == "refused: already delivered by another payment"
    audit = session.audits.get(action="credit_returned")
    assert (audit.from_status, audit.to_status, audit.source) == (
        PaymentStatus.COMPLETED,
        PaymentStatus.REFUNDED,
        AuditSource.WALLET,
    )
    assert audit.data["why"] == "refused: already delivered by another payment"
    assert audit.data["ledger_entry"] == returned.pk
    # Nothing is left for staff to do by hand.
    assert not Alert.objects.filter(code="payment.refund_due").exists()
    refunded = Event.objects.get(audience=f"user:{user.pk}", type="payment.refunded")
    assert refunded.payload["reason"] == "credit_returned"


def test_provider_money_refused_keeps_the_refund_flag_and_alert(test_purpose):
    test_purpose.refusing = True
    session = purchase()
    payment_confirm(
        reference=session.reference, evidence=WEBHOOK, amount=Decimal("10.00"), currency="BRL"
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.refund_due
    assert Alert.objects.filter(code="payment.refund_due").exists()
    assert not session.audits.filter(action="credit_returned").exists()


def test_a_wallet_payment_refused_on_a_rerun_gives_the_credit_back_once(test_purpose):
    user = credited_user()
    test_purpose.failing = True
    session = purchase(user, provider="wallet")
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at is None
    assert wallet_account_get(user=user).balance == Decimal("15.00")

    test_purpose.failing, test_purpose.refusing = False, True
    result = payment_fulfil(reference=session.reference, evidence=RECONCILER)
    assert not result.fulfilled
    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    assert session.audits.get(action="credit_returned").source == AuditSource.RECONCILER

    again = payment_fulfil(reference=session.reference, evidence=RECONCILER)
    assert again.outcome == ConfirmOutcome.ALREADY_PROCESSED
    assert LedgerEntry.objects.filter(session=session, kind=LedgerKind.REFUND).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("25.00")
