"""Who holds a machine: a PIX purchase holds it for a short while (MACHINE_RESERVATION_MINUTES);
credit purchases are refused before they are charged; refused credit goes back to the wallet."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications.models import Alert
from payments.models import AuditSource, LedgerEntry, LedgerKind, PaymentSession, PaymentStatus
from payments.services import payment_fail, payment_fulfil, wallet_account_get
from payments.services.confirmation import Evidence
from subscriptions.errors import MachineBusy, MachineReserved
from subscriptions.models import UsageSession, UsageStatus
from tests.db_faults import updates_fail
from tests.factories import MachineFactory, UserFactory
from tests.subscriptions.conftest import buy, with_credit
from tests.subscriptions.test_machines import approve

pytestmark = pytest.mark.django_db


def time_passes(payment):
    """The PIX payment's time is up (the expiry job has not run yet)."""
    past = timezone.now() - timedelta(seconds=1)
    PaymentSession.objects.filter(pk=payment.pk).update(expires_at=past)
    UsageSession.objects.filter(status=UsageStatus.AWAITING_PAYMENT).update(reserved_until=past)


def test_a_pix_purchase_reserves_the_machine_for_a_short_hold(client, mp_fake):
    machine, payer, other = MachineFactory(), UserFactory(), with_credit()
    payment = buy(payer, machine)
    reservation = UsageSession.objects.get()
    assert reservation.reserved_until == reservation.created_at + timedelta(minutes=5)
    assert payment.expires_at - reservation.reserved_until >= timedelta(minutes=50)

    # Others are refused, clearly, before anything is charged or created.
    with pytest.raises(MachineReserved) as caught:
        buy(other, machine, "credit")
    assert "Someone is paying for this machine" in caught.value.message
    with pytest.raises(MachineReserved):
        buy(other, machine, "pix")
    assert UsageSession.objects.count() == 1
    assert wallet_account_get(user=other).balance == Decimal("20.00")

    # The pages show it.
    client.force_login(other)
    listing = client.get("/machines/").content.decode()
    assert f'data-code="{machine.code}" data-held="reserved"' in listing and "Reserved" in listing
    page = client.get(f"/machines/{machine.code}/").content.decode()
    assert 'data-state="reserved"' in page and "it is reserved until" in page
    response = client.post(
        f"/machines/{machine.code}/start/",
        {"minutes": "30", "method": "credit", "key": "other-1"},
        follow=True,
    )
    assert "Someone is paying for this machine" in response.content.decode()
    client.force_login(payer)
    assert 'data-state="paying"' in client.get(f"/machines/{machine.code}/").content.decode()

    # Its time is up: the machine is free again, and whoever takes it keeps it.
    time_passes(payment)
    buy(other, machine, "credit")
    assert UsageSession.objects.get(customer=other).status == UsageStatus.ACTIVE
    assert wallet_account_get(user=other).balance == Decimal("12.00")

    # A payment made after its reservation ran out is provider money: kept and flagged.
    approve(client, mp_fake, payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED and payment.refund_due
    assert payment.fulfilment_error == "refused: the machine was taken by someone else"
    assert Alert.objects.filter(code="payment.refund_due").exists()
    assert UsageSession.objects.get(customer=payer).status == UsageStatus.AWAITING_PAYMENT


def test_a_failed_pix_payment_releases_the_machine_at_once(client, mp_fake):
    machine, payer, other = MachineFactory(), UserFactory(), with_credit()
    payment = buy(payer, machine)
    payment_fail(reference=payment.reference, evidence=Evidence(source=AuditSource.WEBHOOK))
    client.force_login(other)
    assert 'data-state="choose"' in client.get(f"/machines/{machine.code}/").content.decode()
    buy(other, machine, "credit")
    assert UsageSession.objects.get(customer=other).status == UsageStatus.ACTIVE


def test_a_customer_is_not_held_back_by_their_own_reservation(mp_fake):
    machine, customer = MachineFactory(), with_credit()
    buy(customer, machine)
    credit = buy(customer, machine, "credit")
    assert credit.status == PaymentStatus.COMPLETED and credit.fulfilled_at is not None
    with pytest.raises(MachineBusy):
        buy(customer, machine, "credit")  # once in use, it is in use


def test_refused_machine_credit_returns_to_the_wallet_with_its_trail(mp_fake):
    machine, first, second = MachineFactory(), with_credit(), with_credit()
    # The first purchase is paid but its activation fails (the money stays recorded) ...
    with updates_fail("subscriptions_usagesession", "NEW.status = 'active'"):
        payment = buy(first, machine, "credit")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED and payment.fulfilled_at is None
    assert wallet_account_get(user=first).balance == Decimal("12.00")
    # ... meanwhile someone else takes the machine ...
    buy(second, machine, "credit")
    # ... so the reconciler's retry is refused: the credit goes back by itself.
    result = payment_fulfil(
        reference=payment.reference, evidence=Evidence(source=AuditSource.RECONCILER)
    )
    assert not result.fulfilled
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and not payment.refund_due
    assert wallet_account_get(user=first).balance == Decimal("20.00")
    returned = LedgerEntry.objects.get(session=payment, kind=LedgerKind.REFUND)
    assert returned.amount == Decimal("8.00")
    assert returned.reason == "refused: the machine was taken by someone else"
    audit = payment.audits.get(action="credit_returned")
    assert audit.source == AuditSource.RECONCILER
    assert audit.data["why"] == "refused: the machine was taken by someone else"
    assert not Alert.objects.filter(code="payment.refund_due").exists()
