"""A PIX purchase holds its machine briefly (MACHINE_RESERVATION_MINUTES), never for the
PIX's whole lifetime; a customer pays for one machine by PIX at a time and can cancel that
payment from the machine's page, which frees the machine at once."""

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Alert
from payments.models import AuditSource, PaymentSession, PaymentStatus
from payments.services import payment_confirm, wallet_account_get, wallet_adjust
from payments.services.confirmation import Evidence
from subscriptions.errors import MachineError, PixPaymentWaiting
from subscriptions.models import UsageSession, UsageStatus
from subscriptions.services.machines import machine_payment_cancel
from tests.factories import MachineFactory, UserFactory
from tests.subscriptions.conftest import buy, with_credit
from tests.subscriptions.test_machines import approve

pytestmark = pytest.mark.django_db


def hold_ends(usage):
    """The hold is over; the PIX itself is still open and payable."""
    UsageSession.objects.filter(pk=usage.pk).update(
        reserved_until=timezone.now() - timedelta(seconds=1)
    )


def page(client, machine) -> str:
    return client.get(f"/machines/{machine.code}/").content.decode()


def cancel(client, machine, payment):
    return client.post(
        f"/machines/{machine.code}/cancel/", {"reference": payment.reference}, follow=True
    )


def test_the_hold_is_a_setting_not_the_pix_lifetime(client, mp_fake, settings):
    settings.MACHINE_RESERVATION_MINUTES = 2
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    usage = UsageSession.objects.get()
    assert usage.reserved_until == usage.created_at + timedelta(minutes=2)
    assert payment.expires_at - usage.created_at >= timedelta(minutes=31)  # PIX stays payable

    # The customer paying sees until when the machine is theirs, and can give it up.
    client.force_login(payer)
    html = page(client, machine)
    # In the business's time zone, named (English: "9:16 AM (America/Sao_Paulo)").
    local = usage.reserved_until.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE))
    held_until = f"{local.strftime('%-I:%M')}\u202f{local.strftime('%p')}"
    assert 'data-state="paying"' in html and 'data-holding="true"' in html
    assert (
        f"This machine is held for you until {held_until} ({settings.BUSINESS_TIME_ZONE})." in html
    )
    assert f'action="/machines/{machine.code}/cancel/"' in html and "Cancel this payment" in html
    assert f'name="reference" value="{payment.reference}"' in html


def test_after_the_hold_others_may_take_the_machine_and_a_late_pix_is_kept(client, mp_fake):
    machine, payer, other = MachineFactory(), UserFactory(), with_credit()
    payment = buy(payer, machine)
    hold_ends(UsageSession.objects.get())
    client.force_login(payer)
    assert "Your hold on this machine ended at" in page(client, machine)

    # The PIX is still payable, but the machine is no longer the payer's alone.
    taken = buy(other, machine, "credit")
    assert taken.status == PaymentStatus.COMPLETED
    assert UsageSession.objects.get(customer=other).status == UsageStatus.ACTIVE
    html = page(client, machine)
    assert 'data-state="paying"' in html and 'id="hold-taken"' in html

    # Paid anyway: provider money, kept, flagged for refund and alerted.
    approve(client, mp_fake, payment)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED and payment.refund_due
    assert payment.fulfilment_error == "refused: the machine was taken by someone else"
    assert Alert.objects.filter(code="payment.refund_due").exists()


def test_a_pix_paid_after_its_hold_still_starts_a_free_machine(client, mp_fake):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    usage = UsageSession.objects.get()
    hold_ends(usage)
    approve(client, mp_fake, payment)
    usage.refresh_from_db()
    assert usage.status == UsageStatus.ACTIVE and usage.payment_session == payment


def test_one_customer_cannot_hold_two_machines(client, mp_fake):
    first, second, payer = MachineFactory(), MachineFactory(), UserFactory()
    buy(payer, first)

    with pytest.raises(PixPaymentWaiting) as caught:
        buy(payer, second)
    assert first.name in caught.value.message
    assert caught.value.details == {"machine": first.code} and caught.value.status == 409
    assert UsageSession.objects.count() == 1 and PaymentSession.objects.count() == 1

    # Nor after the hold ended, while that PIX can still be paid; the page says which one
    # and links to it, where it can be cancelled.
    hold_ends(UsageSession.objects.get())
    client.force_login(payer)
    response = client.post(
        f"/machines/{second.code}/start/",
        {"minutes": "30", "method": "pix", "key": "second-1"},
        follow=True,
    )
    html = response.content.decode()
    assert f"You are already paying for {first.name} by PIX." in html
    assert f'<a href="/machines/{first.code}/">Pay or cancel it</a>' in html
    assert UsageSession.objects.count() == 1

    # Paying with credit holds nothing and stays possible.
    wallet_adjust(user=payer, amount=Decimal("8.00"), actor=UserFactory(), reason="credit")
    assert buy(payer, second, "credit").status == PaymentStatus.COMPLETED


def test_the_customer_cancels_their_pix_and_the_machine_is_free_at_once(client, mp_fake):
    machine, payer, other = MachineFactory(), UserFactory(), with_credit()
    payment = buy(payer, machine)
    client.force_login(other)
    assert 'data-state="reserved"' in page(client, machine)

    # Only by POST, with the CSRF token.
    client.force_login(payer)
    assert client.get(f"/machines/{machine.code}/cancel/").status_code == 405
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(payer)
    refused = guarded.post(f"/machines/{machine.code}/cancel/", {"reference": payment.reference})
    assert refused.status_code == 403

    response = cancel(client, machine, payment)
    assert "Payment cancelled; the machine is no longer held for you." in response.content.decode()
    assert 'data-state="choose"' in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED
    audit = payment.audits.get(action="cancelled")
    assert (audit.source, audit.actor) == (AuditSource.CUSTOMER, payer)
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.CANCELLED
    event = usage.events.get(type="cancelled")
    assert (event.source, event.actor, event.data["reference"]) == (
        "customer",
        payer,
        payment.reference,
    )

    # Free for others at once, and the payer may start again.
    client.force_login(other)
    assert 'data-state="choose"' in page(client, machine)
    buy(other, machine, "credit")
    assert UsageSession.objects.get(customer=other).status == UsageStatus.ACTIVE
    assert wallet_account_get(user=other).balance == Decimal("12.00")
    buy(payer, MachineFactory())

    # A second cancel changes nothing; a PIX paid after all is kept and flagged.
    machine_payment_cancel(customer=payer, machine_code=machine.code, reference=payment.reference)
    assert usage.events.filter(type="cancelled").count() == 1
    approve(client, mp_fake, payment)
    payment.refresh_from_db()
    assert payment.late_payment and payment.refund_due
    assert Alert.objects.filter(code="payment.late").exists()


def test_only_ones_own_open_pix_can_be_cancelled(client, mp_fake):
    machine, payer, stranger = MachineFactory(), UserFactory(), UserFactory()
    payment = buy(payer, machine)

    with pytest.raises(MachineError) as caught:
        machine_payment_cancel(
            customer=stranger, machine_code=machine.code, reference=payment.reference
        )
    assert caught.value.code == "no_payment"
    client.force_login(stranger)
    response = cancel(client, machine, payment)
    assert "There is no payment of yours to cancel for this machine." in response.content.decode()
    with pytest.raises(MachineError):
        machine_payment_cancel(
            customer=payer, machine_code="elsewhere", reference=payment.reference
        )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING

    # Paid meanwhile: too late to cancel; the attempt stays in the trail.
    payment_confirm(
        reference=payment.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=payment.amount,
        currency=payment.currency,
    )
    with pytest.raises(MachineError) as caught:
        machine_payment_cancel(
            customer=payer, machine_code=machine.code, reference=payment.reference
        )
    assert caught.value.code == "not_cancellable"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED
    assert payment.audits.filter(action="ignored_cancelled", actor=payer).exists()
    assert UsageSession.objects.get().status == UsageStatus.ACTIVE
