"""Concurrent purchases of machine time, on PostgreSQL with real threads: a machine is taken
once, credit is charged once, the others are refused before anything is charged."""

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from payments.errors import InsufficientCredit
from payments.models import AuditSource, LedgerEntry, LedgerKind, PaymentSession, PaymentStatus
from payments.services import payment_confirm, wallet_account_get, wallet_adjust
from payments.services.confirmation import Evidence
from subscriptions.demo import machines_demo
from subscriptions.errors import MachineBusy, MachineError, PixPaymentWaiting
from subscriptions.models import Machine, UsageSession, UsageStatus
from subscriptions.services.machines import machine_payment_cancel, machine_session_buy
from tests.factories import MachineFactory, UserFactory
from tests.payments.test_concurrency import run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def attempt(customer, code: str, minutes: int, method: str = "credit"):
    """One customer's click on "pay": "ok" (paid by credit, or a PIX code to pay), or the
    error code they were shown."""

    def buy():
        try:
            machine_session_buy(
                customer=customer,
                machine_code=code,
                minutes=minutes,
                method=method,
                idempotency_key=uuid.uuid4().hex,
            )
            return "ok"
        except (MachineBusy, PixPaymentWaiting) as exc:  # MachineReserved too
            return exc.code
        except InsufficientCredit:
            return "insufficient_credit"

    return buy


def test_concurrent_credit_purchases_of_one_machine_take_it_and_charge_once():
    customer, machine = UserFactory(), MachineFactory()
    wallet_adjust(user=customer, amount=Decimal("200.00"), actor=UserFactory(), reason="credit")

    results = run_in_threads(16, attempt(customer, machine.code, 30))

    assert Counter(results) == {"ok": 1, "machine_busy": 15}
    usage = UsageSession.objects.get()  # the refused ones left nothing behind
    assert usage.status == UsageStatus.ACTIVE and usage.machine == machine
    assert wallet_account_get(user=customer).balance == Decimal("192.00")
    assert LedgerEntry.objects.filter(kind=LedgerKind.SPEND).count() == 1
    assert not LedgerEntry.objects.filter(kind=LedgerKind.REFUND).exists()
    payment = PaymentSession.objects.get()
    assert payment.status == PaymentStatus.COMPLETED and payment.fulfilled_at is not None
    assert not PaymentSession.objects.filter(refund_due=True).exists()


def test_concurrent_credit_purchases_across_the_demo_machines():
    machines_demo()
    customer = UserFactory()
    wallet_adjust(user=customer, amount=Decimal("40.00"), actor=UserFactory(), reason="credit")
    cheapest = {"lav-01": 30, "sec-01": 20, "mas-01": 5}  # 8.00 + 6.00 + 3.00
    buyers = iter([attempt(customer, code, minutes) for code, minutes in cheapest.items()] * 8)

    results = run_in_threads(24, lambda: next(buyers)())

    assert Counter(results) == {"ok": 3, "machine_busy": 21}
    active = UsageSession.objects.filter(status=UsageStatus.ACTIVE)
    assert sorted(active.values_list("machine__code", flat=True)) == sorted(cheapest)
    assert UsageSession.objects.count() == 3
    assert wallet_account_get(user=customer).balance == Decimal("23.00")
    assert LedgerEntry.objects.filter(kind=LedgerKind.SPEND).count() == 3
    assert not PaymentSession.objects.filter(refund_due=True).exists()
    assert Machine.objects.count() == 3


def test_concurrent_pix_purchases_by_different_customers_reserve_once(mp_fake):
    machine = MachineFactory()
    customers = [UserFactory() for _ in range(8)]
    queue = iter(customers)

    results = run_in_threads(8, lambda: attempt(next(queue), machine.code, 30, "pix")())

    assert Counter(results) == {"ok": 1, "machine_reserved": 7}
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.AWAITING_PAYMENT
    # A short hold, not the PIX's whole lifetime.
    assert usage.reserved_until - usage.created_at == timedelta(minutes=5)
    assert usage.reserved_until < PaymentSession.objects.get().expires_at


def test_concurrent_pix_purchases_by_one_customer_across_machines_hold_one(mp_fake):
    machines = [MachineFactory() for _ in range(4)]
    customer = UserFactory()
    buyers = iter([attempt(customer, m.code, 30, "pix") for m in machines] * 2)

    results = run_in_threads(8, lambda: next(buyers)())

    assert Counter(results) == {"ok": 1, "pix_payment_waiting": 7}
    usage = UsageSession.objects.get()  # the refused ones left nothing behind
    assert usage.status == UsageStatus.AWAITING_PAYMENT and usage.customer == customer
    assert PaymentSession.objects.get().params == {"usage_session": usage.pk}


def test_one_pix_click_sent_several_times_at_once_is_one_purchase(mp_fake):
    """A double click (or a retried request) carries one idempotency key: every copy gets
    the first payment session, none is refused as "already paying"."""
    machine, customer = MachineFactory(), UserFactory()
    key = uuid.uuid4().hex

    def click():
        try:
            return machine_session_buy(
                customer=customer,
                machine_code=machine.code,
                minutes=30,
                method="pix",
                idempotency_key=key,
            ).reference
        except PixPaymentWaiting as exc:
            return exc.code

    results = run_in_threads(6, click)

    payment = PaymentSession.objects.get()
    assert results == [payment.reference] * 6
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.AWAITING_PAYMENT
    assert payment.params == {"usage_session": usage.pk} and payment.provider_data["qr_code"]
    assert len(mp_fake.payments) == 1


def test_a_cancel_racing_the_payment_s_confirmation_ends_in_one_consistent_state(mp_fake):
    """The customer clicks Cancel as the provider's notification is confirmed: whichever
    wins, the money is recorded once, and either the machine runs on it, or the purchase is
    cancelled and the money is kept, flagged for refund — never both, never neither."""
    outcomes = Counter()
    for _ in range(6):
        machine, customer = MachineFactory(), UserFactory()
        payment = machine_session_buy(
            customer=customer,
            machine_code=machine.code,
            minutes=30,
            method="pix",
            idempotency_key=uuid.uuid4().hex,
        )
        steps = iter(["cancel", "confirm"])

        def step(payment=payment, machine=machine, customer=customer, steps=steps):
            if next(steps) == "cancel":
                try:
                    machine_payment_cancel(
                        customer=customer, machine_code=machine.code, reference=payment.reference
                    )
                    return "cancelled"
                except MachineError as exc:
                    return exc.code
            payment_confirm(
                reference=payment.reference,
                evidence=Evidence(source=AuditSource.WEBHOOK),
                amount=payment.amount,
                currency=payment.currency,
            )
            return "confirmed"

        results = run_in_threads(2, step)
        assert "confirmed" in results

        payment.refresh_from_db()
        usage = UsageSession.objects.get(pk=payment.params["usage_session"])
        assert payment.status == PaymentStatus.COMPLETED
        assert payment.audits.filter(action="completed").count() == 1
        if usage.status == UsageStatus.ACTIVE:
            outcomes["ran"] += 1
            assert not payment.refund_due and "cancelled" not in results
        else:
            outcomes["cancelled"] += 1
            assert usage.status == UsageStatus.CANCELLED and "cancelled" in results
            assert payment.refund_due and payment.late_payment
    assert sum(outcomes.values()) == 6
