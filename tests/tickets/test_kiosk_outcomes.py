"""A kiosk payment that did not become a ticket says what happened, why, and what to do
next: pay again for the same service, choose another, or go to the desk."""

from decimal import Decimal

import pytest

from payments.models import AuditSource
from payments.services.confirmation import (
    Evidence,
    payment_confirm,
    payment_expire,
    payment_fail,
)
from tests.factories import KioskFactory
from tests.tickets.conftest import kiosk_session
from tickets.models import Ticket
from tickets.services import kiosk_token_rotate

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiosk(db):
    kiosk = KioskFactory(name="Entrada")
    return kiosk, kiosk_token_rotate(kiosk=kiosk)


def state_of(client, session, token) -> str:
    response = client.get(f"/kiosk/wait/{session.reference}/state/", {"token": token})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("close", "title", "reason"),
    [
        (
            lambda ref: payment_fail(reference=ref, evidence=Evidence(source=AuditSource.WEBHOOK)),
            "This payment was rejected",
            "The payment provider rejected the payment.",
        ),
        (
            lambda ref: payment_expire(
                reference=ref, evidence=Evidence(source=AuditSource.SYSTEM), force=True
            ),
            "This payment expired",
            "The payment was not made before its time ran out.",
        ),
    ],
    ids=["rejected", "expired"],
)
def test_an_unpaid_kiosk_payment_offers_to_pay_again_for_the_same_service(
    client, service, kiosk, close, title, reason
):
    kiosk, token = kiosk
    session = kiosk_session(service, kiosk=kiosk.pk)
    close(session.reference)
    page = state_of(client, session, token)
    assert 'id="payment-closed"' in page and title in page
    assert 'id="payment-reason"' in page and reason in page
    assert "No money was taken" in page
    assert f'id="try-again" href="/kiosk/service/{service.pk}/?token={token}"' in page
    assert f'id="start-again" href="/kiosk/?token={token}"' in page
    assert 'data-tone="' in page
    # The retry is a fresh payment for that service.
    form = client.get(f"/kiosk/service/{service.pk}/", {"token": token})
    assert form.status_code == 200 and service.name in form.content.decode()


def test_a_kiosk_payment_held_for_review_sends_the_customer_to_the_desk(client, service, kiosk):
    kiosk, token = kiosk
    session = kiosk_session(service, kiosk=kiosk.pk)
    payment_confirm(
        reference=session.reference,
        amount=session.amount - Decimal("1.00"),
        currency=session.currency,
        evidence=Evidence(source=AuditSource.WEBHOOK),
    )
    session.refresh_from_db()
    assert session.amount_mismatch and not Ticket.objects.exists()
    page = state_of(client, session, token)
    assert 'id="payment-held"' in page and "go to the desk" in page
    assert "spinner" not in page  # no endless "Making your ticket…"
