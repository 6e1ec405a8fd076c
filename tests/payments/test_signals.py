"""Integrator hooks: `payment_confirmed` and `payment_status_changed`, sent after commit,
never for a change rolled back, and never breaking a payment when a receiver raises."""

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from payments.models import AuditSource, PaymentSession, PaymentStatus
from payments.services import (
    payment_confirm,
    payment_fail,
    payment_fulfil,
    payment_mark_processing,
    payment_refund,
    payment_session_create,
)
from payments.services.confirmation import Evidence
from payments.services.expiry import sessions_expire_due
from payments.signals import payment_confirmed, payment_status_changed
from tests.payments.conftest import test_purpose  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK = Evidence(source=AuditSource.WEBHOOK)
STAFF = Evidence(source=AuditSource.STAFF, reason="checked with the bank")


class Recorder:
    """A receiver that notes what it got and what the database held when it ran."""

    def __init__(self):
        self.calls = []

    def __call__(self, sender, session, signal, **kwargs):
        self.calls.append(
            {
                "sender": sender,
                "reference": session.reference,
                **kwargs,
                "in_transaction": connection.in_atomic_block,
                "stored_status": PaymentSession.objects.get(pk=session.pk).status,
            }
        )


@pytest.fixture
def confirmed():
    recorder = Recorder()
    payment_confirmed.connect(recorder, dispatch_uid="test-confirmed")
    yield recorder
    payment_confirmed.disconnect(dispatch_uid="test-confirmed")


@pytest.fixture
def changed():
    recorder = Recorder()
    payment_status_changed.connect(recorder, dispatch_uid="test-changed")
    yield recorder
    payment_status_changed.disconnect(dispatch_uid="test-changed")


def purchase() -> PaymentSession:
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session


def confirm(session, amount=None, evidence=WEBHOOK):
    return payment_confirm(
        reference=session.reference,
        amount=session.amount if amount is None else amount,
        currency=session.currency,
        evidence=evidence,
    )


def test_a_confirmed_payment_is_announced_once_after_commit(test_purpose, confirmed, changed):  # noqa: F811
    session = purchase()
    payment_mark_processing(reference=session.reference, evidence=WEBHOOK)
    confirm(session)
    confirm(session)  # a duplicate notification changes nothing, announces nothing

    assert confirmed.calls == [
        {
            "sender": PaymentSession,
            "reference": session.reference,
            "fulfilled": True,
            "in_transaction": False,
            "stored_status": PaymentStatus.COMPLETED,
        }
    ]
    assert [(c["previous_status"], c["status"], c["stored_status"]) for c in changed.calls] == [
        (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.PROCESSING),
        (PaymentStatus.PROCESSING, PaymentStatus.COMPLETED, PaymentStatus.COMPLETED),
    ]
    assert not any(c["in_transaction"] for c in changed.calls)


def test_a_failed_fulfilment_is_announced_unfulfilled_then_fulfilled(
    test_purpose,  # noqa: F811
    confirmed,
):
    session = purchase()
    test_purpose.failing = True
    confirm(session)
    test_purpose.failing = False
    payment_fulfil(reference=session.reference, evidence=Evidence(source=AuditSource.RECONCILER))
    assert [c["fulfilled"] for c in confirmed.calls] == [False, True]


def test_a_payment_held_for_review_changes_status_but_is_not_confirmed(
    test_purpose,  # noqa: F811
    confirmed,
    changed,
):
    session = purchase()
    confirm(session, amount=Decimal("1.00"))  # less than asked: held for review
    assert confirmed.calls == []
    assert [(c["previous_status"], c["status"]) for c in changed.calls] == [
        (PaymentStatus.PENDING, PaymentStatus.COMPLETED)
    ]
    payment_fulfil(reference=session.reference, evidence=STAFF, accept_review=True)
    assert [c["fulfilled"] for c in confirmed.calls] == [True]


def test_closing_and_refunding_are_status_changes(test_purpose, changed):  # noqa: F811
    failed, refunded = purchase(), purchase()
    payment_fail(reference=failed.reference, evidence=WEBHOOK)
    confirm(refunded)
    payment_refund(reference=refunded.reference, evidence=STAFF)
    assert [(c["reference"], c["previous_status"], c["status"]) for c in changed.calls] == [
        (failed.reference, PaymentStatus.PENDING, PaymentStatus.FAILED),
        (refunded.reference, PaymentStatus.PENDING, PaymentStatus.COMPLETED),
        (refunded.reference, PaymentStatus.COMPLETED, PaymentStatus.REFUNDED),
    ]


def test_expired_sessions_are_status_changes(test_purpose, changed):  # noqa: F811
    due, open_ = purchase(), purchase()
    PaymentSession.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(1))
    assert sessions_expire_due().expired == 1
    assert [
        (c["reference"], c["previous_status"], c["status"], c["stored_status"])
        for c in changed.calls
    ] == [(due.reference, PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.EXPIRED)]
    assert open_.reference not in {c["reference"] for c in changed.calls}


def test_a_change_rolled_back_is_never_announced(test_purpose, changed):  # noqa: F811
    session = purchase()
    with pytest.raises(RuntimeError), transaction.atomic():
        payment_fail(reference=session.reference, evidence=WEBHOOK)
        assert changed.calls == []  # not before commit either
        raise RuntimeError("the caller's work failed")
    assert changed.calls == []
    assert PaymentSession.objects.get(pk=session.pk).status == PaymentStatus.PENDING


def test_a_receiver_that_raises_breaks_nothing(test_purpose, confirmed, caplog):  # noqa: F811
    def broken(sender, session, **kwargs):
        raise RuntimeError("the integrator's code is broken")

    payment_confirmed.connect(broken, dispatch_uid="test-broken")
    try:
        session = purchase()
        with caplog.at_level(logging.ERROR, logger="payments.signals"):
            result = confirm(session)
    finally:
        payment_confirmed.disconnect(dispatch_uid="test-broken")

    assert result.fulfilled
    session.refresh_from_db()
    assert (session.status, session.fulfilled_at is not None) == (PaymentStatus.COMPLETED, True)
    assert [c["reference"] for c in confirmed.calls] == [session.reference]  # others still ran
    [record] = [r for r in caplog.records if r.name == "payments.signals"]
    assert session.reference in record.getMessage()
    assert "the integrator's code is broken" in str(record.exc_info[1])
