"""Pay-per-use machines: PIX or credit, activation exactly once, completion, staff fixes."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifications.models import Event
from payments.errors import InsufficientCredit
from payments.models import PaymentSession, PaymentStatus
from payments.services import payment_expire, wallet_account_get, wallet_adjust
from payments.services.confirmation import Evidence
from subscriptions.errors import MachineBusy, MachineNotFound
from subscriptions.models import UsageSession, UsageStatus
from subscriptions.services.machines import (
    machine_session_buy,
    usage_session_end,
    usage_session_extend,
    usage_sessions_complete_due,
)
from tests.factories import MachineFactory, UserFactory
from tests.payments.conftest import post_mp

pytestmark = pytest.mark.django_db


def buy(customer, machine, method="pix", minutes=30, key=None):
    return machine_session_buy(
        customer=customer,
        machine_code=machine.code,
        minutes=minutes,
        method=method,
        idempotency_key=key or uuid.uuid4().hex,
    )


def approve(client, mp_fake, payment):
    mp_fake.set_status(payment.provider_payment_id, "approve")
    response = post_mp(client, mp_fake.notification(payment.provider_payment_id))
    assert response.status_code == 200 and response.intake["status"] == "accepted"
    assert response.json()["status"] == "processed", response.json()
    return response


def test_pix_payment_activates_the_usage_session(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    payment = buy(customer, machine)
    assert payment.purpose == "machine_session" and payment.amount == Decimal("8.00")
    assert payment.provider_data["qr_code"]
    usage = UsageSession.objects.get()
    assert usage.status == UsageStatus.AWAITING_PAYMENT

    approve(client, mp_fake, payment)
    usage.refresh_from_db()
    assert usage.status == UsageStatus.ACTIVE and usage.payment_session == payment
    assert usage.ends_at - usage.started_at == timedelta(minutes=30)
    types = {(e.audience, e.type) for e in Event.objects.all()}
    assert (f"user:{customer.pk}", "payment.confirmed") in types
    assert (f"user:{customer.pk}", "machine_session.activated") in types
    activate = Event.objects.get(audience=f"machine:{machine.pk}", type="machine.activate")
    assert activate.payload["usage_session"] == usage.pk
    # JSON keeps milliseconds.
    assert abs(parse_datetime(activate.payload["ends_at"]) - usage.ends_at) < timedelta(
        milliseconds=1
    )


def test_two_pix_payments_for_one_usage_session_activate_once(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    first = buy(customer, machine)
    usage = UsageSession.objects.get()
    from payments.services import payment_session_create

    second = payment_session_create(
        user=customer,
        purpose="machine_session",
        provider="mercadopago",
        params={"usage_session": usage.pk},
        idempotency_key=uuid.uuid4().hex,
    ).session
    approve(client, mp_fake, first)
    approve(client, mp_fake, second)
    usage.refresh_from_db()
    assert usage.payment_session == first
    second.refresh_from_db()
    assert second.status == PaymentStatus.COMPLETED
    assert second.refund_due and second.fulfilled_at is None
    assert Event.objects.filter(type="machine.activate").count() == 1
    assert Event.objects.filter(type="alert.raised", payload__code="payment.refund_due").exists()


def test_credit_payment_activates_at_once_through_the_same_path(mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    wallet_adjust(user=customer, amount=Decimal("10.00"), actor=UserFactory(), reason="x")
    payment = buy(customer, machine, method="credit")
    assert payment.status == PaymentStatus.COMPLETED and payment.provider == "wallet"
    assert payment.audits.get(action="completed").source == "wallet"
    assert UsageSession.objects.get().status == UsageStatus.ACTIVE
    assert wallet_account_get(user=customer).balance == Decimal("2.00")


def test_not_enough_credit_changes_nothing(mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    with pytest.raises(InsufficientCredit):
        buy(customer, machine, method="credit")
    assert not UsageSession.objects.exists()
    assert not PaymentSession.objects.exists()
    assert wallet_account_get(user=customer).balance == 0


def test_busy_machine_and_unknown_machine_are_refused(client, mp_fake):
    machine = MachineFactory()
    approve(client, mp_fake, buy(UserFactory(), machine))
    with pytest.raises(MachineBusy):
        buy(UserFactory(), machine)
    with pytest.raises(MachineNotFound):
        machine_session_buy(
            customer=UserFactory(),
            machine_code="nope",
            minutes=30,
            method="pix",
            idempotency_key="k",
        )
    assert UsageSession.objects.count() == 1


def test_database_allows_one_active_session_per_machine(client, mp_fake):
    machine, other = MachineFactory(), MachineFactory()
    approve(client, mp_fake, buy(UserFactory(), machine))
    approve(client, mp_fake, buy(UserFactory(), other))
    on_other = UsageSession.objects.get(machine=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageSession.objects.filter(pk=on_other.pk).update(machine=machine)


def test_expired_pix_then_paid_late_is_flagged_not_activated(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    payment = buy(customer, machine)
    payment_expire(reference=payment.reference, evidence=Evidence(source="system"), force=True)
    approve(client, mp_fake, payment)
    payment.refresh_from_db()
    assert payment.late_payment and payment.refund_due
    assert UsageSession.objects.get().status == UsageStatus.AWAITING_PAYMENT


def test_completion_job_switches_off_and_tells_the_customer(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    approve(client, mp_fake, buy(customer, machine))
    assert usage_sessions_complete_due() == 0
    usage = UsageSession.objects.get()
    assert usage_sessions_complete_due(now=usage.ends_at + timedelta(seconds=1)) == 1
    usage.refresh_from_db()
    assert usage.status == UsageStatus.COMPLETED
    assert (
        Event.objects.filter(audience=f"machine:{machine.pk}", type="machine.deactivate").count()
        == 1
    )
    assert (
        Event.objects.filter(
            audience=f"user:{customer.pk}", type="machine_session.completed"
        ).count()
        == 1
    )


def test_staff_end_and_extend_need_a_reason_and_are_audited(client, mp_fake):
    from subscriptions.errors import MachineError

    customer, machine, staff = UserFactory(), MachineFactory(), UserFactory(roles=["staff"])
    approve(client, mp_fake, buy(customer, machine))
    usage = UsageSession.objects.get()
    with pytest.raises(MachineError):
        usage_session_extend(usage_session_id=usage.pk, minutes=10, actor=staff, reason=" ")
    before = usage.ends_at
    usage_session_extend(
        usage_session_id=usage.pk, minutes=10, actor=staff, reason="machine jammed for 10 minutes"
    )
    usage.refresh_from_db()
    assert usage.ends_at == before + timedelta(minutes=10)
    usage_session_end(usage_session_id=usage.pk, actor=staff, reason="customer left early")
    usage.refresh_from_db()
    assert usage.status == UsageStatus.COMPLETED
    events = list(usage.events.values_list("type", "actor", "reason"))
    assert ("extended_by_staff", staff.pk, "machine jammed for 10 minutes") in events
    assert ("ended_by_staff", staff.pk, "customer left early") in events
    assert Event.objects.filter(type="machine_session.extended").exists()
    assert Event.objects.filter(type="machine.deactivate", payload__reason="ended_by_staff")


def test_admin_extend_action(client, mp_fake):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    approve(client, mp_fake, buy(UserFactory(), MachineFactory()))
    usage = UsageSession.objects.get()
    staff = UserFactory(roles=["staff"], is_staff=True, is_superuser=True)
    client.force_login(staff)
    data = {
        "action": "extend",
        ACTION_CHECKBOX_NAME: [usage.pk],
        "apply": "1",
        "minutes": "5",
        "reason": "goodwill",
    }
    client.post("/admin/subscriptions/usagesession/", data)
    usage.refresh_from_db()
    assert usage.minutes == 35
    assert usage.events.filter(type="extended_by_staff", actor=staff).exists()


def test_machine_page_shows_the_true_state(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    client.force_login(customer)
    url = f"/machines/{machine.code}/"
    assert 'data-state="choose"' in client.get(url).content.decode()
    client.post(
        f"/machines/{machine.code}/start/", {"minutes": "30", "method": "pix", "key": "page-1"}
    )
    page = client.get(url).content.decode()
    assert 'data-state="paying"' in page and "pix-code" in page
    payment = PaymentSession.objects.get()
    approve(client, mp_fake, payment)
    assert "Machine activated!" in client.get(f"{url}state/").content.decode()


def test_machine_page_explains_missing_credit_with_a_top_up_link(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    client.force_login(customer)
    response = client.post(
        f"/machines/{machine.code}/start/",
        {"minutes": "30", "method": "credit", "key": "c-1"},
        follow=True,
    )
    page = response.content.decode()
    assert "Not enough credit" in page and 'href="/payments/"' in page
    assert not UsageSession.objects.exists()


def test_expired_pix_shows_expired_and_try_again(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    client.force_login(customer)
    payment = buy(customer, machine)
    PaymentSession.objects.filter(pk=payment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    page = client.get(f"/machines/{machine.code}/").content.decode()
    assert 'data-state="expired"' in page and "Try again with PIX" in page


def test_simulate_from_a_live_refreshed_block_returns_to_the_page(client, mp_fake, settings):
    """The state block is re-fetched by htmx; its simulate form must send the customer
    back to the machine page, not to the bare fragment."""
    settings.FAKE_PROVIDERS = True
    customer, machine = UserFactory(), MachineFactory()
    client.force_login(customer)
    buy(customer, machine)
    page_url = f"http://testserver/machines/{machine.code}/"
    fragment = client.get(
        f"/machines/{machine.code}/state/",
        headers={"HX-Request": "true", "HX-Current-URL": page_url},
    )
    assert f'name="next" value="/machines/{machine.code}/"' in fragment.content.decode()


def test_activation_page_speaks_portuguese(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    wallet_adjust(user=customer, amount=Decimal("10.00"), actor=UserFactory(), reason="x")
    buy(customer, machine, method="credit")
    client.force_login(customer)
    page = client.get(f"/machines/{machine.code}/", HTTP_ACCEPT_LANGUAGE="pt-BR")
    assert "Máquina ativada!" in page.content.decode()


def test_a_key_used_by_someone_else_leaves_no_waiting_usage(client, mp_fake):
    from payments.errors import IdempotencyConflict

    machine = MachineFactory()
    buy(UserFactory(), machine, key="shared-key")
    with pytest.raises(IdempotencyConflict):
        buy(UserFactory(), machine, key="shared-key")
    statuses = sorted(UsageSession.objects.values_list("status", flat=True))
    assert statuses == ["awaiting_payment"]
