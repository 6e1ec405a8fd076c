"""Every audit trail names who or what acted in one vocabulary (`AuditSource`)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from orders.models import OrderEvent
from payments.models import AuditSource, PaymentAudit
from payments.services import wallet_adjust
from subscriptions.models import SubscriptionEvent, UsageEvent, UsageSession
from tests.factories import MachineFactory, UserFactory
from tests.subscriptions.test_machines import approve, buy


def test_the_audit_trails_share_one_vocabulary():
    fields = [
        PaymentAudit._meta.get_field("source"),
        SubscriptionEvent._meta.get_field("actor_type"),
        UsageEvent._meta.get_field("source"),
        OrderEvent._meta.get_field("source"),
    ]
    assert {tuple(field.choices) for field in fields} == {tuple(AuditSource.choices)}
    # What the subscription trail stored before keeps its meaning and its label.
    for value in ("system", "provider", "staff", "reconciler", "customer"):
        assert value in AuditSource.values
    with translation.override("es"):
        assert str(AuditSource.PROVIDER.label) == str(translation.gettext("provider"))


@pytest.mark.django_db
def test_a_machine_paid_from_credit_is_activated_by_the_wallet(mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    wallet_adjust(user=customer, amount=Decimal("10.00"), actor=UserFactory(), reason="x")
    payment = buy(customer, machine, method="credit")
    event = UsageSession.objects.get(payment_session=payment).events.get(type="activated")
    assert (event.source, event.data) == (
        AuditSource.WALLET,
        {"reference": payment.reference, "provider": "wallet"},
    )


@pytest.mark.django_db
def test_a_machine_paid_by_pix_is_activated_by_the_provider(client, mp_fake):
    customer, machine = UserFactory(), MachineFactory()
    payment = buy(customer, machine)
    approve(client, mp_fake, payment)
    event = UsageSession.objects.get(payment_session=payment).events.get(type="activated")
    assert (event.source, event.data) == (
        AuditSource.PROVIDER,
        {"reference": payment.reference, "provider": "mercadopago"},
    )
    assert event.get_source_display() == "provider"


@pytest.mark.django_db(transaction=True)
def test_usage_events_naming_a_provider_are_migrated_to_the_vocabulary():
    executor = MigrationExecutor(connection)
    before = [("subscriptions", "0005_verbose_names")]
    after = [("subscriptions", "0006_one_audit_vocabulary")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    user = apps.get_model("auth", "User").objects.create(username="vocabulary")
    machine = apps.get_model("subscriptions", "Machine").objects.create(name="Lavadora", code="w1")
    usage = apps.get_model("subscriptions", "UsageSession").objects.create(
        machine=machine, customer=user, minutes=30, amount="10.00", currency="BRL"
    )
    Event = apps.get_model("subscriptions", "UsageEvent")
    paid = Event.objects.create(
        usage_session=usage, type="activated", source="mercadopago", data={"reference": "r"}
    )
    kept = [
        Event.objects.create(usage_session=usage, type="created", source=source)
        for source in ("system", "customer", "staff", "wallet")
    ]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        Event = apps.get_model("subscriptions", "UsageEvent")
        paid = Event.objects.get(pk=paid.pk)
        assert (paid.source, paid.data) == (
            "provider",
            {"reference": "r", "provider": "mercadopago"},
        )
        assert [Event.objects.get(pk=e.pk).source for e in kept] == [
            "system",
            "customer",
            "staff",
            "wallet",
        ]
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        apps = executor.loader.project_state(before).apps
        paid = apps.get_model("subscriptions", "UsageEvent").objects.get(pk=paid.pk)
        assert (paid.source, paid.data) == ("mercadopago", {"reference": "r"})
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
