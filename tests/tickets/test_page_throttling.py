"""Buying a ticket at the kiosk creates a payment session like POST /api/payment-sessions/:
an anonymous kiosk counts by its address against the same THROTTLE_PAYMENT_SESSION_CREATE
budget, and beyond it gets the details form back, status 429, with the message."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from payments.models import PaymentSession
from tests.payments.test_page_throttling import assert_refused
from tests.payments.test_throttling import provider_creations, rates
from tickets.models import Kiosk
from tickets.services import kiosk_token_rotate

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiosk_url(service):
    token = kiosk_token_rotate(kiosk=Kiosk.objects.create(name="Entrada"))
    return reverse("kiosk-service", args=[service.pk]) + f"?token={token}"


def buy(kiosk, url, method="card", name=""):
    return kiosk.post(
        url, {"method": method, "key": uuid.uuid4().hex, "cpf": "", "customer_name": name}
    )


def test_beyond_the_rate_the_kiosk_answers_429_and_opens_no_payment(kiosk_url, settings, mp_fake):
    rates(settings, payment_session_create="2/min")
    kiosk = Client(REMOTE_ADDR="198.51.100.7")
    assert buy(kiosk, kiosk_url, method="pix").status_code == 302
    assert buy(kiosk, kiosk_url).status_code == 302

    refused = buy(kiosk, kiosk_url, method="pix", name="Ana")

    assert_refused(refused)
    page = refused.content.decode()
    # The details form again, with what was typed.
    assert 'class="kiosk-form"' in page and 'value="Ana"' in page
    assert PaymentSession.objects.count() == 2 and provider_creations(mp_fake) == 1
    # Showing the form is not counted; another address has counts of its own.
    assert kiosk.get(kiosk_url).status_code == 200
    assert buy(Client(REMOTE_ADDR="198.51.100.8"), kiosk_url).status_code == 302


def test_the_kiosk_and_the_api_share_one_budget_per_address(kiosk_url, settings, test_purpose):
    rates(settings, payment_session_create="2/min")
    kiosk = Client(REMOTE_ADDR="198.51.100.7")
    created = kiosk.post(
        "/api/payment-sessions/",
        data={"purpose": "test_purchase", "provider": "kiosk", "params": {"item": "tea"}},
        content_type="application/json",
        headers={"Idempotency-Key": "api-0"},
    )
    assert created.status_code == 201
    assert buy(kiosk, kiosk_url).status_code == 302

    assert_refused(buy(kiosk, kiosk_url))
    assert PaymentSession.objects.count() == 2


def test_the_simulate_button_is_not_counted(kiosk_url, settings, kiosk_secret):
    rates(settings, payment_session_create="1/min")
    settings.FAKE_PROVIDERS = True
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the simulated webhook goes nowhere
    kiosk = Client(REMOTE_ADDR="198.51.100.7")
    waiting = buy(kiosk, kiosk_url)
    assert waiting.status_code == 302
    reference = PaymentSession.objects.get().reference
    token = kiosk_url.split("token=")[1]
    for _ in range(2):
        simulated = kiosk.post(
            reverse("kiosk-simulate", args=[reference]) + f"?token={token}",
            {"action": "approve"},
        )
        assert simulated.status_code == 302
        assert kiosk.get(waiting["Location"]).status_code == 200
