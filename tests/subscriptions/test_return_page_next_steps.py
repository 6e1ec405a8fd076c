"""The subscription return page's last states say what to do next: a payment held for
review says the page will show the decision; a refunded one says where the money goes
and leads back to the plans."""

from decimal import Decimal

import pytest

from payments.models import AuditSource
from payments.services.confirmation import Evidence, payment_confirm, payment_refund
from tests.subscriptions.conftest import checkout

pytestmark = pytest.mark.django_db


def state_page(client, session) -> str:
    return client.get(f"/billing/return/state/?order_id={session.reference}").content.decode()


def confirm(session, amount):
    payment_confirm(
        reference=session.reference,
        amount=amount,
        currency=session.currency,
        evidence=Evidence(source=AuditSource.WEBHOOK),
    )


def test_a_payment_held_for_review_says_the_decision_will_show(client, billing, plans, customer):
    client.force_login(customer)
    session = checkout(customer, plans["usd"], "nowpayments")
    confirm(session, session.amount + Decimal("5.00"))
    page = state_page(client, session)
    assert 'data-state="review"' in page
    assert 'id="review-note"' in page and "decision as soon as it is made" in page


def test_a_refunded_payment_says_where_the_money_goes(client, billing, plans, customer):
    client.force_login(customer)
    session = checkout(customer, plans["usd"], "nowpayments")
    confirm(session, session.amount)
    payment_refund(reference=session.reference, evidence=Evidence(source=AuditSource.WEBHOOK))
    page = state_page(client, session)
    assert 'data-state="refunded"' in page
    assert 'id="refund-note"' in page and "goes back the way you paid" in page
    assert 'href="/billing/"' in page
