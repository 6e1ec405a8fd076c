"""Every page shows times in the business's time zone, with the zone named: the
operator panel, live activity, a customer's subscription and credit history."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import translation

from notifications.services import event_publish
from subscriptions.models import SubscriptionEvent
from tests.factories import (
    PlanFactory,
    PrinterFactory,
    ServiceFactory,
    SubscriptionEventFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.tickets.conftest import paid_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_back():
    # A request's Accept-Language stays active in this thread: later tests expect none.
    yield
    translation.deactivate()


# 15:07 UTC is 20:07 in Tashkent (UTC+5) and 12:07 in São Paulo (UTC−3).
MOMENT = datetime(2026, 12, 6, 15, 7, 30, tzinfo=UTC)
UTC_TEXT = re.compile(r"\b15:07\b|2026-12-06T15:07")


def visible(html: str) -> str:
    """The page's text a person reads: no tags, so no `datetime` attributes."""
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture(autouse=True)
def tashkent(settings):
    settings.BUSINESS_TIME_ZONE = "Asia/Tashkent"
    settings.TIME_ZONE = "UTC"


def test_operator_panel_shows_paid_times_in_the_business_zone(client):
    PrinterFactory(name="Demo", url="dummy:")
    service = ServiceFactory(name="Atendimento", prefix="A", price=Decimal("5"))
    ticket = paid_ticket(service)
    Ticket.objects.filter(pk=ticket.pk).update(paid_at=MOMENT)
    client.force_login(UserFactory(roles=["operator"]))
    text = visible(client.get("/operator/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert ticket.code in text
    assert re.search(r"8:07\s*PM \(Asia/Tashkent\)", text), text[-600:]
    assert not UTC_TEXT.search(text)


def test_live_activity_shows_event_times_in_the_business_zone(client):
    user = UserFactory(roles=["customer"])
    (event,) = event_publish(audience=f"user:{user.pk}", type="payment.confirmed", payload={})
    type(event).objects.filter(pk=event.pk).update(created_at=MOMENT)
    client.force_login(user)
    text = visible(client.get("/activity/", HTTP_ACCEPT_LANGUAGE="pt-br").content.decode())
    assert re.search(r"06/12/2026,? 20:07 \(Asia/Tashkent\)", text), text[-600:]
    assert not UTC_TEXT.search(text)


def test_my_subscription_shows_period_payment_and_history_in_the_business_zone(client):
    user = UserFactory(roles=["customer"])
    plan = PlanFactory(
        code="pro", name="Pro", tier="pro", price=Decimal("9"), currency="USD", period_days=30
    )
    subscription = SubscriptionFactory(
        user=user,
        plan=plan,
        tier="pro",
        status="active",
        current_period_start=MOMENT,
        current_period_end=MOMENT + timedelta(days=30),
        last_payment_at=MOMENT,
    )
    history = SubscriptionEventFactory(subscription=subscription, user=user, type="activated")
    SubscriptionEvent.objects.filter(pk=history.pk).update(created_at=MOMENT)
    client.force_login(user)
    text = visible(client.get("/billing/subscription/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert text.count("(Asia/Tashkent)") >= 4, text
    assert "Dec 6, 2026, 8:07:30" in text and "Jan 5, 2027, 8:07:30" in text
    assert not UTC_TEXT.search(text)
