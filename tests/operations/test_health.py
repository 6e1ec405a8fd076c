"""The staff health page and /api/integration/status/ show the numbers of a hand-built
scenario."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.models import (
    AuditSource,
    DeliveryStatus,
    PaymentSession,
)
from payments.services.confirmation import Evidence, payment_confirm
from tests.factories import UserFactory, WebhookDeliveryFactory, WebhookRefusalFactory
from tests.subscriptions.conftest import *  # noqa: F403 - billing, plans, customer
from tests.subscriptions.conftest import checkout

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(billing, plans, customer, monkeypatch):
    """Four Click subscription payments: 2 delivered (1 s and 3 s after payment), 1 paid
    but not delivered, 1 still pending; 1 NOWPayments payment held for a wrong amount;
    webhook deliveries of several kinds."""
    from payments.registry import purpose_get

    sessions = [checkout(customer, plans["uzs"], "click") for _ in range(4)]
    # Opened before the UZS plan runs: a change to a USD plan is refused while it does.
    held = checkout(customer, plans["usd"], "nowpayments")
    now = timezone.now()
    for session, delay in zip(sessions[:2], (1, 3), strict=True):
        payment_confirm(
            reference=session.reference,
            evidence=Evidence(source=AuditSource.WEBHOOK),
            amount=session.amount,
            currency="UZS",
        )
        PaymentSession.objects.filter(pk=session.pk).update(
            completed_at=now, fulfilled_at=now + timedelta(seconds=delay)
        )
    purpose = purpose_get("subscription")
    monkeypatch.setattr(purpose, "fulfil", lambda *, session: 1 / 0)
    payment_confirm(
        reference=sessions[2].reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=sessions[2].amount,
        currency="UZS",
    )
    monkeypatch.undo()
    payment_confirm(
        reference=held.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=Decimal("1.00"),
        currency="USD",
    )
    old = now - timedelta(hours=3)
    rows = [
        ("click", DeliveryStatus.PROCESSED, True, now),
        ("click", DeliveryStatus.PROCESSED, True, old),
        ("click", DeliveryStatus.REJECTED, True, now),
        ("click", DeliveryStatus.REJECTED, True, old),
        ("coinbase", DeliveryStatus.DEAD, True, now - timedelta(days=5)),
        ("coinbase", DeliveryStatus.FAILED, True, now),
        ("kiosk", DeliveryStatus.RECEIVED, True, now - timedelta(seconds=40)),
    ]
    for provider, status, valid, when in rows:
        WebhookDeliveryFactory(
            provider=provider, status=status, signature_valid=valid, received_at=when
        )
    # Refused requests are counted, not stored: one bad signature now, one three hours ago.
    for when in (now, old):
        WebhookRefusalFactory(
            provider="click",
            reason="invalid signature",
            response_status=200,
            window_start=when.replace(minute=0, second=0, microsecond=0),
            first_at=when,
            last_at=when,
        )
    return {"sessions": sessions, "held": held}


def test_numbers_match_the_scenario(scenario):
    from config.health import integration_status

    status = integration_status()
    rows = {(r["purpose"], r["provider"]): r for r in status["payments"]}
    click = rows[("subscription", "click")]
    assert (click["created"], click["completed"], click["fulfilled"], click["held"]) == (4, 3, 2, 0)
    assert click["conversion_percent"] == 66.7
    assert click["fulfil_seconds"] == {"count": 2, "p50": 1.0, "p95": 3.0}
    crypto = rows[("subscription", "nowpayments")]
    assert (crypto["completed"], crypto["fulfilled"], crypto["held"]) == (1, 0, 1)

    webhooks = {w["provider"]: w for w in status["webhooks"]}
    assert webhooks["click"]["last_hour"] == {"processed": 1, "rejected": 1}
    assert webhooks["click"]["last_day"] == {"processed": 2, "rejected": 2}
    assert webhooks["click"]["signature_failures"] == {"last_hour": 1, "last_day": 2}
    assert webhooks["coinbase"]["dead_unresolved"] == 1
    assert webhooks["coinbase"]["last_day"] == {"failed": 1}
    # Waiting for the workers: the kiosk delivery stored 40 s ago (the failed one has no
    # next attempt: it waits for nobody).
    assert status["backlog"]["waiting"] == 1
    assert 40 <= status["backlog"]["oldest_seconds"] < 60

    kinds = {g["reference"]: g["kind"] for g in status["gaps"]["listed"]}
    assert status["gaps"]["total"] == 2
    assert kinds == {
        scenario["sessions"][2].reference: "unfulfilled",
        scenario["held"].reference: "amount_mismatch",
    }


def test_page_api_and_repair_button(client, scenario):
    staff = UserFactory(roles=["staff"])
    client.force_login(staff)
    api = client.get("/api/integration/status/").json()
    assert api["gaps"]["total"] == 2 and "totals" in api  # kiosk figures stay on top
    page = client.get("/operations/").content.decode()
    reference = scenario["sessions"][2].reference
    assert f'data-reference="{reference}"' in page and "66.7 %" in page
    response = client.post("/operations/repair/", {"reference": reference})
    assert response.status_code == 302
    session = PaymentSession.objects.get(reference=reference)
    assert session.fulfilled_at is not None
    assert client.get("/api/integration/status/").json()["gaps"]["total"] == 1
    # A held payment is not the reconciler's to decide.
    client.post("/operations/repair/", {"reference": scenario["held"].reference})
    assert PaymentSession.objects.get(pk=scenario["held"].pk).fulfilled_at is None


def test_only_staff(client, scenario, customer):
    client.force_login(customer)
    assert client.get("/operations/").status_code == 403
    assert client.post("/operations/repair/", {"reference": "x"}).status_code == 403
    assert client.get("/api/integration/status/").status_code == 403
