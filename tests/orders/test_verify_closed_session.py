"""A cashier's verification that finds the payment closed meanwhile changes nothing, but
leaves a trail: who tried, and why it was not applied."""

import pytest

from orders.errors import OrderError
from orders.models import OrderStatus
from orders.services import order_verify, proof_submit
from payments.models import AuditSource, PaymentSession, PaymentStatus
from payments.services import ConfirmOutcome, payment_confirm, payment_fail
from payments.services.confirmation import Evidence
from tests.orders.conftest import make_order, png_bytes, upload

pytestmark = pytest.mark.django_db


def test_a_verify_of_a_session_closed_meanwhile_is_audited_not_applied(staff_users, private_media):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    proof = proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )
    session = PaymentSession.objects.get(pk=proof.payment_session_id)
    # Between the cashier's page and the click, the payment was closed (a rejection, staff).
    payment_fail(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=staff_users["staff"], reason="void"),
    )

    with pytest.raises(OrderError) as caught:
        order_verify(order_id=order.pk, cashier=cashier)

    assert caught.value.code == "not_awaiting"
    session.refresh_from_db()
    assert session.status == PaymentStatus.FAILED and not session.late_payment
    assert not session.audits.filter(action="completed").exists()
    trail = session.audits.get(action="ignored_confirmation")
    assert (trail.source, trail.actor) == (AuditSource.CASHIER, cashier)
    assert (trail.from_status, trail.to_status) == (PaymentStatus.FAILED, PaymentStatus.FAILED)
    assert trail.data["why"] == "session no longer open"
    assert trail.data["proof"] == proof.pk
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_VERIFICATION


def test_only_if_open_on_a_closed_session_returns_ignored_with_an_audit_row(
    staff_users, private_media
):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order = make_order(waiter)
    proof = proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )
    session = PaymentSession.objects.get(pk=proof.payment_session_id)
    payment_fail(reference=session.reference, evidence=Evidence(source=AuditSource.SYSTEM))

    result = payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.CASHIER, actor=cashier, reason="looks right"),
        amount=session.amount,
        currency=session.currency,
        only_if_open=True,
    )

    assert result.outcome == ConfirmOutcome.IGNORED and not result.changed
    session.refresh_from_db()
    assert session.status == PaymentStatus.FAILED and session.completed_at is None
    trail = session.audits.get(action="ignored_confirmation")
    assert (trail.actor, trail.reason, trail.data["why"]) == (
        cashier,
        "looks right",
        "session no longer open",
    )
