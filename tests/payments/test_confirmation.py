"""The one confirmation path: exactly once, audited, events after commit, nothing lost."""

import json
import uuid
from decimal import Decimal

import pytest

from notifications.models import Event
from payments.errors import InsufficientCredit, PaymentError
from payments.models import AuditSource, LedgerEntry, PaymentSession, PaymentStatus
from payments.services import (
    ConfirmOutcome,
    payment_confirm,
    payment_expire,
    payment_fail,
    payment_fulfil,
    payment_mark_processing,
    payment_refund,
    payment_session_create,
    wallet_account_get,
    wallet_adjust,
)
from payments.services.confirmation import Evidence
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WEBHOOK = Evidence(source=AuditSource.WEBHOOK)
RECONCILER = Evidence(source=AuditSource.RECONCILER)


def topup(user, amount="25.00"):
    return payment_session_create(
        user=user,
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal(amount),
        idempotency_key=uuid.uuid4().hex,
    ).session


def purchase(user=None, provider="kiosk"):
    return payment_session_create(
        user=user,
        purpose="test_purchase",
        provider=provider,
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session


def confirm(session, **kwargs):
    """What a provider notification says: the session's own amount, unless told otherwise."""
    kwargs.setdefault("amount", session.amount)
    kwargs.setdefault("currency", session.currency)
    return payment_confirm(reference=session.reference, evidence=WEBHOOK, **kwargs)


def test_topup_confirmed_once_credits_wallet_and_tells_the_user(
    mp_fake, django_capture_on_commit_callbacks
):
    user = UserFactory()
    session = topup(user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = payment_confirm(
            reference=session.reference, evidence=WEBHOOK, amount=Decimal("25.00"), currency="BRL"
        )
    assert result.outcome == ConfirmOutcome.CONFIRMED and result.fulfilled
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert session.completed_at and session.fulfilled_at
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    assert list(session.audits.values_list("action", flat=True)) == [
        "created",
        "provider_created",
        "completed",
        "fulfilled",
    ]
    assert len(callbacks) == 1  # the push waits for the commit
    event = Event.objects.get(type="payment.confirmed", audience=f"user:{user.pk}")
    assert event.payload == json.loads(json.dumps(event.payload))
    assert event.payload["reference"] == session.reference
    assert event.payload["purpose"] == "wallet_topup"
    assert event.payload["amount"] == "25.00"

    for _ in range(4):
        again = confirm(session)
        assert again.outcome == ConfirmOutcome.ALREADY_PROCESSED
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert Event.objects.filter(type="payment.confirmed").count() == 2  # user + payment


def test_pending_or_failed_after_approved_changes_nothing(mp_fake):
    session = topup(UserFactory())
    confirm(session)
    assert payment_mark_processing(reference=session.reference, evidence=WEBHOOK).outcome == (
        ConfirmOutcome.IGNORED
    )
    assert payment_fail(reference=session.reference, evidence=WEBHOOK).outcome == (
        ConfirmOutcome.IGNORED
    )
    assert payment_expire(reference=session.reference, evidence=WEBHOOK, force=True).outcome == (
        ConfirmOutcome.IGNORED
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert "ignored_failed" in set(session.audits.values_list("action", flat=True))


def test_approved_after_expiry_is_recorded_as_late_and_flagged(mp_fake):
    user = UserFactory()
    session = topup(user)
    payment_expire(reference=session.reference, evidence=WEBHOOK, force=True)
    result = confirm(
        session,
        provider_payment_id=session.provider_payment_id,
    )
    assert result.outcome == ConfirmOutcome.LATE
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert session.late_payment and session.refund_due
    assert session.fulfilled_at is None
    assert wallet_account_get(user=user).balance == 0
    assert Event.objects.filter(
        type="alert.raised", audience="role:staff", payload__code="payment.late"
    ).exists()
    # The reconciler leaves it for staff; staff may accept it with a reason.
    with pytest.raises(PaymentError):
        payment_fulfil(reference=session.reference, evidence=RECONCILER)
    staff = UserFactory(roles=["staff"])
    payment_fulfil(
        reference=session.reference,
        accept_review=True,
        evidence=Evidence(
            source=AuditSource.STAFF, actor=staff, reason="customer confirmed by phone"
        ),
    )
    assert wallet_account_get(user=user).balance == Decimal("25.00")


def test_amount_mismatch_is_recorded_alerted_and_not_fulfilled(mp_fake):
    user = UserFactory()
    session = topup(user, "25.00")
    result = payment_confirm(
        reference=session.reference, evidence=WEBHOOK, amount=Decimal("2.50"), currency="BRL"
    )
    assert result.outcome == ConfirmOutcome.MISMATCH
    session.refresh_from_db()
    assert session.amount_mismatch and session.paid_amount == Decimal("2.50")
    assert session.fulfilled_at is None
    assert wallet_account_get(user=user).balance == 0
    assert Event.objects.filter(payload__code="payment.amount_mismatch").exists()
    assert not Event.objects.filter(type="payment.confirmed").exists()


def test_currency_mismatch_is_a_mismatch(mp_fake):
    session = topup(UserFactory())
    result = payment_confirm(
        reference=session.reference, evidence=WEBHOOK, amount=Decimal("25.00"), currency="USD"
    )
    assert result.outcome == ConfirmOutcome.MISMATCH


def test_failing_fulfilment_keeps_the_payment_and_is_rerun_exactly_once(test_purpose):
    test_purpose.failing = True
    session = purchase()
    result = confirm(session)
    assert result.outcome == ConfirmOutcome.CONFIRMED and not result.fulfilled
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert "the machine is on fire" in session.fulfilment_error
    assert session.fulfilled_at is None
    assert Event.objects.filter(
        type="alert.raised", payload__code="payment.fulfilment_failed"
    ).exists()
    assert not Event.objects.filter(type="test.fulfilled").exists()  # rolled back

    test_purpose.failing = False
    rerun = payment_fulfil(reference=session.reference, evidence=RECONCILER)
    assert rerun.fulfilled
    payment_fulfil(reference=session.reference, evidence=RECONCILER)
    assert Event.objects.filter(type="test.fulfilled").count() == 1
    session.refresh_from_db()
    assert session.fulfilment_error == "" and session.fulfilment_attempts == 2
    assert session.audits.filter(action="fulfilled", source="reconciler").count() == 1


def test_refused_fulfilment_flags_a_refund(test_purpose):
    test_purpose.refusing = True
    session = purchase()
    confirm(session)
    session.refresh_from_db()
    assert session.refund_due and session.fulfilled_at is None
    assert Event.objects.filter(payload__code="payment.refund_due").exists()


def test_second_provider_payment_for_a_paid_session_is_flagged(test_purpose):
    session = purchase()
    confirm(session, provider_payment_id="tx-1")
    result = confirm(session, provider_payment_id="tx-2")
    assert result.outcome == ConfirmOutcome.DUPLICATE_PAYMENT
    assert Event.objects.filter(type="test.fulfilled").count() == 1
    assert Event.objects.filter(payload__code="payment.duplicate").exists()


def test_refund_after_completion_is_recorded_and_alerted(test_purpose):
    session = purchase()
    confirm(session)
    payment_refund(reference=session.reference, evidence=WEBHOOK, chargeback=True)
    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    assert session.audits.filter(action="chargeback").exists()
    assert Event.objects.filter(payload__code="payment.chargeback").exists()
    # Refunded is terminal: a late "approved" does not bring it back.
    assert confirm(session).outcome == (ConfirmOutcome.ALREADY_PROCESSED)


def test_staff_actions_need_a_reason(test_purpose):
    session = purchase()
    staff = UserFactory(roles=["staff"])
    with pytest.raises(PaymentError, match="reason"):
        payment_confirm(
            reference=session.reference, evidence=Evidence(source=AuditSource.STAFF, actor=staff)
        )
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
    payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=staff, reason="paid in cash at the desk"),
    )
    audit = session.audits.get(action="completed")
    assert audit.actor == staff and audit.reason == "paid in cash at the desk"


def test_paying_from_wallet_goes_through_the_same_path(test_purpose):
    user = UserFactory()
    staff = UserFactory(roles=["staff"])
    wallet_adjust(user=user, amount=Decimal("12.00"), actor=staff, reason="welcome credit")
    session = purchase(user, provider="wallet")
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert session.audits.get(action="completed").source == AuditSource.WALLET
    assert wallet_account_get(user=user).balance == Decimal("2.00")

    with pytest.raises(InsufficientCredit):
        purchase(user, provider="wallet")
    assert wallet_account_get(user=user).balance == Decimal("2.00")
    assert PaymentSession.objects.filter(user=user).count() == 1


def test_a_webhook_that_does_not_say_the_amount_is_not_fulfilled(test_purpose):
    session = purchase()
    result = payment_confirm(reference=session.reference, evidence=WEBHOOK)
    assert result.outcome == ConfirmOutcome.MISMATCH
    assert not Event.objects.filter(type="test.fulfilled").exists()


def test_notices_about_another_provider_payment_leave_the_session_alone(test_purpose):
    session = purchase()
    confirm(session, provider_payment_id="tx-1")
    confirm(session, provider_payment_id="tx-2")  # a duplicate payment, refunded by staff
    result = payment_refund(
        reference=session.reference, evidence=WEBHOOK, provider_payment_id="tx-2"
    )
    assert result.outcome == ConfirmOutcome.IGNORED
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert Event.objects.filter(payload__code="payment.refund_other_payment").exists()
    assert (
        payment_fail(
            reference=session.reference, evidence=WEBHOOK, provider_payment_id="tx-2"
        ).outcome
        == ConfirmOutcome.IGNORED
    )


def test_a_repeated_refund_notice_changes_nothing_and_alerts_once(test_purpose):
    session = purchase()
    confirm(session)
    payment_refund(reference=session.reference, evidence=WEBHOOK)
    again = payment_refund(reference=session.reference, evidence=WEBHOOK)
    assert again.outcome == ConfirmOutcome.ALREADY_PROCESSED
    assert Event.objects.filter(payload__code="payment.refund").count() == 1


def test_an_unknown_purpose_still_records_the_money(test_purpose, monkeypatch):
    from payments import registry

    session = purchase()
    monkeypatch.delitem(registry._PURPOSES, "test_purchase")
    result = confirm(session)
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and not result.fulfilled
    assert "UnknownPurpose" in session.fulfilment_error
