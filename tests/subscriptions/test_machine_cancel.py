"""Cancelling a PIX purchase of machine time never cancels money that may already be paid:
the provider is asked first (paid there: confirmed, and the machine starts), a payment
being processed is not cancelled, and when the provider cannot be asked nothing changes."""

import pytest

from notifications.models import Alert
from payments.models import AuditSource, PaymentStatus
from payments.services import payment_mark_processing
from payments.services.confirmation import Evidence
from subscriptions.errors import MachineError
from subscriptions.models import UsageSession, UsageStatus
from subscriptions.services.machines import machine_payment_cancel
from tests.factories import MachineFactory, UserFactory
from tests.payments.conftest import post_mp
from tests.subscriptions.conftest import buy, with_credit
from tests.subscriptions.test_machine_hold import cancel, hold_ends

pytestmark = pytest.mark.django_db


def asked_about(mp_fake, payment) -> int:
    """How many times Confirma looked the payment up at the fake provider."""
    path = f"/v1/payments/{payment.provider_payment_id}"
    return sum(1 for method, seen, _ in mp_fake.requests_seen if (method, seen) == ("GET", path))


def test_a_cancel_after_the_payer_paid_starts_the_machine_instead(client, mp_fake):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    # Paid in the bank app; Mercado Pago's notification has not arrived yet.
    mp_fake.set_status(payment.provider_payment_id, "approve")
    client.force_login(payer)

    response = cancel(client, machine, payment)

    html = response.content.decode()
    assert "Your payment has arrived; the machine is starting." in html
    assert 'data-state="active"' in html
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED and payment.fulfilled_at is not None
    assert not (payment.late_payment or payment.refund_due)
    completed = payment.audits.get(action="completed")
    assert completed.source == AuditSource.POLL
    assert completed.data["provider_status"] == "approved"
    assert not payment.audits.filter(action__in=["cancelled", "ignored_cancelled"]).exists()
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.ACTIVE and usage.payment_session == payment
    assert not usage.events.filter(type="cancelled").exists()

    # The notification, when it comes, changes nothing; nothing is flagged for refund.
    assert post_mp(client, mp_fake.notification(payment.provider_payment_id)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.COMPLETED and not payment.refund_due
    assert payment.audits.filter(action="completed").count() == 1
    assert not Alert.objects.filter(code__in=["payment.late", "payment.refund_due"]).exists()


def test_paid_at_the_provider_after_someone_took_the_machine_is_kept_not_cancelled(client, mp_fake):
    machine, payer, other = MachineFactory(), UserFactory(), with_credit()
    payment = buy(payer, machine)
    hold_ends(UsageSession.objects.get())
    buy(other, machine, "credit")
    mp_fake.set_status(payment.provider_payment_id, "approve")
    client.force_login(payer)

    html = cancel(client, machine, payment).content.decode()

    assert "Your payment has arrived, so it can no longer be cancelled" in html
    payment.refresh_from_db()
    # Provider money for a machine someone else has: kept, flagged for refund, alerted.
    assert payment.status == PaymentStatus.COMPLETED and payment.refund_due
    assert not payment.late_payment
    assert Alert.objects.filter(code="payment.refund_due").exists()


def test_a_payment_being_processed_is_not_cancelled(client, mp_fake):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    payment_mark_processing(
        reference=payment.reference, evidence=Evidence(source=AuditSource.WEBHOOK)
    )
    client.force_login(payer)

    html = cancel(client, machine, payment).content.decode()

    assert "Your payment is already being processed, so it can no longer be cancelled." in html
    # The page offers no cancel for it any more, and says why.
    html = client.get(f"/machines/{machine.code}/").content.decode()
    assert 'data-state="paying"' in html and 'id="payment-processing"' in html
    assert 'id="cancel-payment"' not in html
    with pytest.raises(MachineError) as caught:
        machine_payment_cancel(
            customer=payer, machine_code=machine.code, reference=payment.reference
        )
    assert caught.value.code == "payment_processing"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    assert not payment.audits.filter(action__in=["cancelled", "ignored_cancelled"]).exists()
    assert UsageSession.objects.get().status == UsageStatus.AWAITING_PAYMENT


def test_a_payment_the_provider_is_processing_is_not_cancelled(client, mp_fake):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    mp_fake.payments[payment.provider_payment_id]["status"] = "in_process"
    client.force_login(payer)

    html = cancel(client, machine, payment).content.decode()

    assert "Your payment is already being processed" in html
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING  # what the provider said is kept
    assert payment.audits.get(action="processing").source == AuditSource.POLL
    assert UsageSession.objects.get().status == UsageStatus.AWAITING_PAYMENT


@pytest.mark.parametrize("fault", ["outage", "unreachable"])
def test_no_cancel_while_the_provider_cannot_be_asked(client, mp_fake, settings, fault):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    audits = payment.audits.count()
    if fault == "outage":
        mp_fake.outage = True  # answers 503
    else:
        settings.MERCADOPAGO_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    client.force_login(payer)

    html = cancel(client, machine, payment).content.decode()

    assert (
        "We could not check with the bank whether this payment was already made, so it was "
        "not cancelled. Try again in a moment." in html
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING and payment.audits.count() == audits
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.AWAITING_PAYMENT and not usage.events.filter(
        type="cancelled"
    )

    # Once the provider answers again (still unpaid), the cancel goes through.
    mp_fake.outage = False
    settings.MERCADOPAGO_API_BASE = mp_fake.url
    html = cancel(client, machine, payment).content.decode()
    assert "Payment cancelled; the machine is no longer held for you." in html
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED


def test_an_unpaid_pix_is_cancelled_after_asking_the_provider(client, mp_fake):
    machine, payer = MachineFactory(), UserFactory()
    payment = buy(payer, machine)
    client.force_login(payer)

    html = cancel(client, machine, payment).content.decode()

    assert "Payment cancelled; the machine is no longer held for you." in html
    assert asked_about(mp_fake, payment) == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED
    assert UsageSession.objects.get().status == UsageStatus.CANCELLED
    # Cancelled already: repeating it asks nobody and changes nothing.
    machine_payment_cancel(customer=payer, machine_code=machine.code, reference=payment.reference)
    assert asked_about(mp_fake, payment) == 1
    assert payment.audits.filter(action="cancelled").count() == 1
