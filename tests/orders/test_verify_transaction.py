"""A cashier's verification: money confirmed stays confirmed, whatever happens to the order."""

import pytest

from core.errors import ConfirmaError
from notifications.models import Alert, Event
from orders.errors import OrderError
from orders.models import OrderStatus, ProofStatus
from orders.services import order_reject, order_verify, proof_submit
from payments.models import AuditSource, PaymentSession, PaymentStatus
from payments.services import payment_fulfil
from payments.services.confirmation import Evidence
from tests.db_faults import updates_fail
from tests.orders.conftest import make_order, png_bytes, upload

pytestmark = pytest.mark.django_db


def orders_cannot_become_paid():
    return updates_fail("orders_order", "NEW.status = 'paid'", "injected fault: no paid orders")


def submit(order, waiter):
    return proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )


def test_a_fulfilment_failure_during_verify_keeps_the_payment_and_its_alert(
    staff_users, private_media
):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    proof = submit(order, waiter)

    with orders_cannot_become_paid(), pytest.raises(OrderError) as caught:
        order_verify(order_id=order.pk, cashier=cashier)

    # The money that was confirmed stays recorded, with its trail and its alert ...
    session = PaymentSession.objects.get(pk=proof.payment_session_id)
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at is None
    assert "injected fault" in session.fulfilment_error
    completed = session.audits.get(action="completed")
    assert (completed.source, completed.actor) == (AuditSource.CASHIER, cashier)
    assert session.audits.filter(action="fulfilment_failed").exists()
    assert Alert.objects.filter(code="payment.fulfilment_failed").exists()
    assert Event.objects.filter(
        audience=f"user:{waiter.pk}", type="payment.confirmed", payload__fulfilled=False
    ).exists()
    proof.refresh_from_db()
    order.refresh_from_db()
    assert proof.reviewed_by == cashier and proof.status == ProofStatus.SUBMITTED
    assert order.status == OrderStatus.AWAITING_VERIFICATION
    # ... and the cashier is told.
    assert caught.value.code == "fulfilment_failed"
    assert "staff were alerted" in caught.value.message

    # Once the fault is gone, the reconciler delivers it, exactly once.
    payment_fulfil(reference=session.reference, evidence=Evidence(source=AuditSource.RECONCILER))
    order.refresh_from_db()
    proof.refresh_from_db()
    assert order.status == OrderStatus.PAID and proof.status == ProofStatus.APPROVED


def test_verifying_a_proof_rejected_meanwhile_changes_nothing(staff_users, private_media):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    proof = submit(order, waiter)
    order_reject(order_id=order.pk, cashier=staff_users["cashier"], reason="Monto ilegible")

    with pytest.raises(OrderError) as caught:
        order_verify(order_id=order.pk, cashier=cashier)
    assert caught.value.code == "not_awaiting"
    session = PaymentSession.objects.get(pk=proof.payment_session_id)
    assert session.status == PaymentStatus.FAILED and not session.late_payment
    assert not session.audits.filter(action="completed").exists()


def test_a_second_verify_of_a_paid_order_is_refused(staff_users, private_media):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    proof = submit(order, waiter)
    assert order_verify(order_id=order.pk, cashier=cashier).status == OrderStatus.PAID
    with pytest.raises(OrderError):
        order_verify(order_id=order.pk, cashier=cashier)
    session = PaymentSession.objects.get(pk=proof.payment_session_id)
    assert session.audits.filter(action="completed").count() == 1


def test_a_proof_for_an_order_with_nothing_to_pay_is_refused_and_nothing_is_kept(
    staff_users, private_media
):
    waiter = staff_users["waiter"]
    order = make_order(waiter)
    order.lines.all().delete()  # an order whose lines were all removed in the admin

    with pytest.raises(ConfirmaError) as caught:
        submit(order, waiter)

    assert caught.value.code == "nothing_to_pay"
    assert not PaymentSession.objects.exists()
    assert not order.proofs.exists()
    assert not any(private_media.rglob("*.*"))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_the_cashier_is_not_shown_the_internal_fulfilment_error(staff_users, private_media):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    submit(order, waiter)
    with orders_cannot_become_paid(), pytest.raises(OrderError) as caught:
        order_verify(order_id=order.pk, cashier=cashier)
    assert "injected fault" not in str(caught.value.details)
