"""The machine start page (PIX and credit) and the plan checkout create payment sessions
like POST /api/payment-sessions/: they count against the same THROTTLE_PAYMENT_SESSION_CREATE
budget, and beyond it answer 429 with their page and a message, creating nothing."""

from decimal import Decimal

import pytest

from payments.models import PaymentSession
from payments.services import wallet_account_get, wallet_adjust
from subscriptions.models import UsageSession
from tests.factories import MachineFactory, UserFactory
from tests.payments.conftest import create_session
from tests.payments.test_page_throttling import TOO_MANY, assert_refused
from tests.payments.test_throttling import TOPUP, provider_creations, rates

pytestmark = pytest.mark.django_db


def start(client, machine, method="pix", key=None):
    return client.post(
        f"/machines/{machine.code}/start/",
        {"minutes": "30", "method": method, "key": key or f"{machine.code}-{method}"},
    )


def test_beyond_the_rate_pix_starts_answer_429_and_create_nothing(client, settings, mp_fake):
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    machines = [MachineFactory() for _ in range(3)]
    assert start(client, machines[0]).status_code == 302
    # One PIX for machine time at a time: the first is given up before the second.
    first = PaymentSession.objects.get().reference
    client.post(f"/machines/{machines[0].code}/cancel/", {"reference": first})
    assert start(client, machines[1]).status_code == 302

    refused = start(client, machines[2])

    assert_refused(refused)
    page = refused.content.decode()
    assert machines[2].name in page and 'data-state="choose"' in page
    assert PaymentSession.objects.count() == 2 and provider_creations(mp_fake) == 2
    assert not UsageSession.objects.filter(machine=machines[2]).exists()
    assert TOO_MANY not in client.get(f"/machines/{machines[2].code}/").content.decode()


def test_beyond_the_rate_credit_starts_charge_nothing(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    customer = UserFactory()
    wallet_adjust(user=customer, amount=Decimal("40.00"), actor=UserFactory(), reason="test")
    client.force_login(customer)
    first, second = MachineFactory(), MachineFactory()
    assert start(client, first, method="credit").status_code == 302

    assert_refused(start(client, second, method="credit"))

    assert wallet_account_get(user=customer).balance == Decimal("32.00")
    assert UsageSession.objects.count() == 1 and PaymentSession.objects.count() == 1


def test_machine_starts_and_the_api_share_one_budget(client, settings, mp_fake):
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    assert create_session(client, key="api-0", **TOPUP).status_code == 201
    machine = MachineFactory()
    assert start(client, machine).status_code == 302
    assert_refused(start(client, MachineFactory()))
    assert create_session(client, key="api-1", **TOPUP).status_code == 429
    assert PaymentSession.objects.count() == 2


def test_machine_pages_and_their_simulate_button_are_not_counted(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    settings.FAKE_PROVIDERS = True
    client.force_login(UserFactory())
    machine = MachineFactory()
    assert start(client, machine).status_code == 302
    reference = PaymentSession.objects.get().reference
    for _ in range(3):
        assert client.get(f"/machines/{machine.code}/").status_code == 200
        assert client.get(f"/machines/{machine.code}/state/").status_code == 200
    simulated = client.post(
        f"/payments/{reference}/simulate/",
        {"action": "approve", "next": f"/machines/{machine.code}/"},
    )
    assert simulated.status_code == 302 and simulated["Location"] == f"/machines/{machine.code}/"


def checkout(client, plan, provider, key):
    return client.post("/billing/checkout/", {"plan": plan.code, "provider": provider, "key": key})


def test_beyond_the_rate_checkout_answers_429_and_opens_no_payment(
    client, settings, billing, plans
):
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    assert checkout(client, plans["usd"], "coinbase", "form-1").status_code == 302
    assert checkout(client, plans["uzs"], "click", "form-2").status_code == 302

    refused = checkout(client, plans["usd"], "coinbase", "form-3")

    assert_refused(refused)
    assert f'data-plan="{plans["usd"].code}"' in refused.content.decode()
    assert PaymentSession.objects.count() == 2 and len(billing.charges) == 1


def test_checkout_and_the_api_share_one_budget(client, settings, billing, plans, mp_fake):
    rates(settings, payment_session_create="1/hour")
    client.force_login(UserFactory())
    assert create_session(client, key="api-0", **TOPUP).status_code == 201
    assert_refused(checkout(client, plans["usd"], "coinbase", "form-1"))
    assert PaymentSession.objects.count() == 1 and not billing.charges
