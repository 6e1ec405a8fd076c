"""The event catalogue (AsyncAPI, /api/events/asyncapi.json) says what Confirma publishes:
every type the code can publish has an entry, and the events the real services publish in
their flows match the entry's audiences and payload schema."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from jsonschema import Draft7Validator, FormatChecker

from config.event_catalogue import CONTROL_FRAMES, EVENTS, EVENTS_BY_TYPE
from notifications.models import Event
from notifications.services import alert_raise
from orders.models import OrderStatus
from orders.services import order_advance, order_reject, order_verify, proof_submit
from payments.models import AuditSource, PaymentStatus
from payments.services import (
    payment_cancel,
    payment_confirm,
    payment_fail,
    payment_mark_processing,
    payment_refund,
)
from payments.services.confirmation import Evidence
from payments.services.expiry import sessions_expire_due
from subscriptions.models import Subscription, UsageSession
from subscriptions.services.machines import (
    usage_session_extend,
    usage_sessions_complete_due,
)
from subscriptions.services.plans import (
    subscription_activate_manually,
    subscription_deactivate,
    subscriptions_expire_due,
)
from tests.factories import MachineFactory, PrinterFactory, ServiceFactory, UserFactory
from tests.notifications.event_producers import published_event_types
from tests.orders.conftest import make_order, png_bytes, upload
from tests.subscriptions.conftest import billing, buy, checkout, plans, with_credit  # noqa: F401
from tests.tickets.conftest import DeafPrinter, LoopbackPrinter, kiosk_session
from tickets.models import PrintJob
from tickets.services import (
    print_job_run,
    ticket_call_next,
    ticket_cancel,
    ticket_complete,
    ticket_no_show,
    ticket_start,
)

WEBHOOK = Evidence(source=AuditSource.WEBHOOK)
PLACEHOLDER = re.compile(r"<[a-z]+>")


@pytest.fixture(scope="module")
def document():
    from config.asyncapi import asyncapi_document

    return json.loads(json.dumps(asyncapi_document()))


def message_for(document, event_type: str) -> dict:
    return document["channels"]["events"]["messages"][event_type.replace(".", "_")]


def audience_matches(pattern: str, audience: str) -> bool:
    regex = "[A-Za-z0-9_-]+".join(re.escape(part) for part in PLACEHOLDER.split(pattern))
    return re.fullmatch(regex, audience) is not None


def assert_catalogued(document, expected: set[str]) -> None:
    """Every event in the log has a catalogue entry, goes to an audience the entry names,
    and its frame (as clients receive it, through JSON) matches the entry's schema; and the
    flow published at least the `expected` types."""
    events = list(Event.objects.order_by("id"))
    for event in events:
        assert event.type in EVENTS_BY_TYPE, f"{event.type} is not in the catalogue"
        entry = EVENTS_BY_TYPE[event.type]
        assert any(audience_matches(p, event.audience) for p in entry.audiences), (
            f"{event.type} went to {event.audience}, not one of {entry.audiences}"
        )
        frame = json.loads(json.dumps(event.as_frame(), cls=DjangoJSONEncoder))
        schema = message_for(document, event.type)["payload"]
        errors = [
            e.message
            for e in Draft7Validator(schema, format_checker=FormatChecker()).iter_errors(frame)
        ]
        assert errors == [], f"{event.type} {frame['payload']}: {errors}"
    missing = expected - {event.type for event in events}
    assert not missing, f"the flow did not publish {sorted(missing)}"


# --- The catalogue itself -----------------------------------------------------------------


def test_every_type_the_code_publishes_is_catalogued_and_nothing_else():
    found = published_event_types()
    assert found.unresolved == [], "event types that could not be followed to a string"
    code = set(found.types)
    catalogued = set(EVENTS_BY_TYPE)
    assert not code - catalogued, {t: sorted(found.types[t]) for t in code - catalogued}
    assert not catalogued - code, f"catalogued but published nowhere: {catalogued - code}"


def test_examples_match_their_own_schemas(document):
    messages = document["channels"]["events"]["messages"]
    assert set(messages) == {
        *(entry.type.replace(".", "_") for entry in EVENTS),
        *CONTROL_FRAMES,
        "ping",
    }
    for key, message in messages.items():
        validator = Draft7Validator(message["payload"], format_checker=FormatChecker())
        for example in message["examples"]:
            assert list(validator.iter_errors(example["payload"])) == [], key


def test_every_reference_in_the_document_resolves(document):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert len(found) == len(document["channels"]["events"]["messages"]) + 2
    for ref in found:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_the_old_names_businesses_used_point_to_confirma_events(document):
    old = {name: entry.type for entry in EVENTS for name in entry.old_names}
    assert old == {
        "payment-confirmed": "payment.confirmed",
        "order_updated": "order.updated",
        "payment_verification_pending": "payment.verification_pending",
    }
    assert message_for(document, "order.updated")["x-old-names"] == ["order_updated"]


def test_served_beside_the_openapi_schema_and_linked_from_the_docs(client):
    response = client.get("/api/events/asyncapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    served = response.json()
    assert served["asyncapi"] == "3.0.0"
    assert served["channels"]["events"]["address"] == "/ws/events/"
    operation = served["operations"]["sendEvents"]
    sent = {ref["$ref"].rsplit("/", 1)[-1] for ref in operation["messages"]}
    assert sent == {entry.type.replace(".", "_") for entry in EVENTS} | set(CONTROL_FRAMES)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/events/asyncapi.json" in schema.content.decode()


# --- Real flows, checked against the catalogue ----------------------------------------------------


@pytest.mark.django_db
def test_kiosk_tickets_and_their_payments_match_the_catalogue(
    document, settings, django_capture_on_commit_callbacks
):
    settings.PRINT_TIMEOUT_SECONDS = 0.3
    settings.PRINT_MAX_ATTEMPTS = 2
    settings.PRINT_RETRY_BASE_SECONDS = 0
    operator = UserFactory(roles=["operator"])
    service = ServiceFactory(name="Emissão de 2ª via", prefix="A")
    good, deaf = LoopbackPrinter(), DeafPrinter()
    printer = PrinterFactory(name="Balcão", url=good.url)
    try:
        tickets = []
        for _ in range(3):
            session = kiosk_session(service)
            with django_capture_on_commit_callbacks(execute=True):
                payment_confirm(
                    reference=session.reference,
                    evidence=WEBHOOK,
                    amount=session.amount,
                    currency=session.currency,
                )
            job = PrintJob.objects.order_by("-pk").first()
            with django_capture_on_commit_callbacks(execute=True):
                print_job_run(job_id=job.pk)
            tickets.append(job.ticket)
        ticket_call_next(operator=operator, desk="3")
        ticket_start(ticket_id=tickets[0].pk, operator=operator)
        ticket_complete(ticket_id=tickets[0].pk, operator=operator)
        ticket_call_next(operator=operator, desk="3")
        ticket_no_show(ticket_id=tickets[1].pk, operator=operator)
        ticket_cancel(ticket_id=tickets[2].pk)

        printer.url = deaf.url
        printer.save()
        session = kiosk_session(service)
        with django_capture_on_commit_callbacks(execute=True):
            payment_confirm(
                reference=session.reference,
                evidence=WEBHOOK,
                amount=session.amount,
                currency=session.currency,
            )
            job = PrintJob.objects.order_by("-pk").first()
            print_job_run(job_id=job.pk)  # may have printed: re-sent marked REPRINT
            print_job_run(job_id=job.pk)  # the last attempt: PRINT_ERROR
    finally:
        good.close()
        deaf.close()

    # The payment session's other ends.
    for close in (payment_fail, payment_cancel):
        session = kiosk_session(service)
        payment_mark_processing(reference=session.reference, evidence=WEBHOOK)
        close(reference=session.reference, evidence=WEBHOOK)
    late = kiosk_session(service)
    late.__class__.objects.filter(pk=late.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    sessions_expire_due()
    wrong = kiosk_session(service)
    payment_confirm(
        reference=wrong.reference, evidence=WEBHOOK, amount=Decimal("1.00"), currency="BRL"
    )
    paid = kiosk_session(service)
    payment_confirm(
        reference=paid.reference, evidence=WEBHOOK, amount=paid.amount, currency=paid.currency
    )
    payment_refund(reference=paid.reference, evidence=WEBHOOK)

    assert_catalogued(
        document,
        {
            "payment.confirmed",
            "payment.processing",
            "payment.failed",
            "payment.cancelled",
            "payment.expired",
            "payment.review",
            "payment.refunded",
            "ticket.created",
            "ticket.printed",
            "ticket.called",
            "ticket.started",
            "ticket.completed",
            "ticket.no_show",
            "ticket.cancelled",
            "ticket.print_interrupted",
            "ticket.print_error",
            "alert.raised",
        },
    )
    assert Event.objects.filter(type="alert.raised", audience="role:operator").exists()


@pytest.mark.django_db
def test_restaurant_orders_match_the_catalogue(document, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    waiter, kitchen = UserFactory(roles=["waiter"]), UserFactory(roles=["kitchen"])
    cashier = UserFactory(roles=["cashier"])
    order = make_order(waiter, status=OrderStatus.PENDING)
    order_advance(order_id=order.pk, to=OrderStatus.PREPARING, actor=kitchen)
    order_advance(order_id=order.pk, to=OrderStatus.READY, actor=kitchen)
    order_advance(order_id=order.pk, to=OrderStatus.DELIVERED, actor=waiter)
    proof_submit(order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter)
    order_reject(order_id=order.pk, cashier=cashier, reason="El monto no coincide")
    proof_submit(order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter)
    order_verify(order_id=order.pk, cashier=cashier)

    assert_catalogued(
        document, {"order.updated", "payment.verification_pending", "payment.rejected"}
    )
    resubmitted = Event.objects.filter(type="payment.verification_pending").last()
    assert resubmitted.payload["action"] == "resubmitted"


@pytest.mark.django_db
def test_machine_time_and_subscriptions_match_the_catalogue(document, billing, plans):  # noqa: F811
    staff = UserFactory(is_staff=True, is_superuser=True)
    customer, machine = with_credit("20.00"), MachineFactory()
    buy(customer, machine, method="credit")
    usage = UsageSession.objects.get()
    usage_session_extend(usage_session_id=usage.pk, minutes=10, actor=staff, reason="jam")
    UsageSession.objects.filter(pk=usage.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    usage_sessions_complete_due()

    subscriber = UserFactory()
    session = checkout(subscriber, plans["usd"], "coinbase")
    payment_confirm(
        reference=session.reference,
        evidence=WEBHOOK,
        amount=session.amount,
        currency=session.currency,
        provider_payment_id=f"pp-{session.pk}",
    )
    held = checkout(subscriber, plans["usd"], "coinbase")
    payment_confirm(
        reference=held.reference,
        evidence=WEBHOOK,
        amount=Decimal("1.00"),
        currency=held.currency,
        provider_payment_id=f"pp-{held.pk}",
    )
    Subscription.objects.filter(user=subscriber).update(
        current_period_end=timezone.now() - timedelta(seconds=1)
    )
    subscriptions_expire_due()
    other = UserFactory()
    subscription_activate_manually(user=other, plan=plans["uzs"], days=5, actor=staff, reason="t")
    subscription_deactivate(user=other, actor=staff, reason="chargeback")

    assert_catalogued(
        document,
        {
            "machine_session.activated",
            "machine_session.extended",
            "machine_session.completed",
            "machine.activate",
            "machine.deactivate",
            "subscription.activated",
            "subscription.payment_held",
            "subscription.expired",
            "subscription.deactivated",
            "payment.confirmed",
            "payment.review",
        },
    )
    kinds = set(
        Event.objects.filter(type="subscription.activated").values_list("payload__kind", flat=True)
    )
    assert kinds == {"activated", "manual"}


@pytest.mark.django_db
def test_staff_alerts_match_the_catalogue(document, settings):
    settings.ADMINS, settings.ALERT_URLS, settings.ALERT_WEBHOOK_URL = [], [], ""
    alert_raise(code="disk.full", message="Disk full", context={"free": Decimal("0.5")})
    assert_catalogued(document, {"alert.raised"})


def test_a_payload_that_strays_from_the_catalogue_is_caught(document):
    """The checks above can fail: a renamed key or a float amount does not pass."""
    schema = message_for(document, "payment.confirmed")["payload"]
    frame = message_for(document, "payment.confirmed")["examples"][0]["payload"]
    validator = Draft7Validator(schema, format_checker=FormatChecker())
    assert validator.is_valid(frame)
    renamed = {**frame, "payload": {**frame["payload"], "paymentId": "x"}}
    assert not validator.is_valid(renamed)
    as_float = {**frame, "payload": {**frame["payload"], "amount": 12.0}}
    assert not validator.is_valid(as_float)
    assert not validator.is_valid({**frame, "at": "06/12/2026 10:00"})
    assert not audience_matches("role:cashier", "role:waiter")
    assert audience_matches("payment:<reference>", "payment:ps_abc-1")
    assert (
        PaymentStatus.COMPLETED in schema["properties"]["payload"]["properties"]["status"]["enum"]
    )
