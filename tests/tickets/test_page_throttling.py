"""Buying a ticket at the kiosk creates a payment session: each kiosk has a budget of its own
(THROTTLE_KIOSK_TICKET), counted for the kiosk its token names, not for its address (the
kiosks of a store and its guest Wi-Fi often share one), and only once the token is known to
be valid. Beyond it the kiosk gets the details form back, status 429, with the message.

The limits here are per hour, so that a test never straddles two counting windows."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from payments.models import PaymentSession
from tests.factories import KioskFactory
from tests.payments.conftest import create_session
from tests.payments.test_page_throttling import TOO_MANY
from tests.payments.test_throttling import KIOSK_TEA, provider_creations, rates
from tickets.services import kiosk_token_rotate

pytestmark = pytest.mark.django_db

STORE = "198.51.100.7"  # the store's one public address: its kiosks and its guest Wi-Fi


def kiosk_url(service, name="Entrada"):
    token = kiosk_token_rotate(kiosk=KioskFactory(name=name))
    return reverse("kiosk-service", args=[service.pk]) + f"?token={token}"


def buy(client, url, method="card", name=""):
    return client.post(
        url, {"method": method, "key": uuid.uuid4().hex, "cpf": "", "customer_name": name}
    )


def assert_refused(response):
    """429, a Retry-After within the hour's window, and the message on the page."""
    assert response.status_code == 429
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= 3600
    assert f"{TOO_MANY} {seconds} second" in response.content.decode()


def test_beyond_its_rate_a_kiosk_answers_429_and_opens_no_payment(service, settings, mp_fake):
    rates(settings, kiosk_ticket="2/hour")
    url = kiosk_url(service)
    kiosk = Client(REMOTE_ADDR=STORE)
    assert buy(kiosk, url, method="pix").status_code == 302
    assert buy(kiosk, url).status_code == 302

    refused = buy(kiosk, url, method="pix", name="Ana")

    assert_refused(refused)
    page = refused.content.decode()
    # The details form again, with what was typed.
    assert 'class="kiosk-form"' in page and 'value="Ana"' in page
    assert PaymentSession.objects.count() == 2 and provider_creations(mp_fake) == 1
    # Showing the form is not counted.
    assert kiosk.get(url).status_code == 200


def test_posts_with_an_invalid_token_are_turned_away_without_spending_the_kiosks_budget(
    service, settings
):
    rates(settings, kiosk_ticket="2/hour", payment_session_create="2/hour")
    url = kiosk_url(service)
    retired = KioskFactory(name="Retired", active=False)
    retired_url = reverse("kiosk-service", args=[service.pk]) + (
        f"?token={kiosk_token_rotate(kiosk=retired)}"
    )
    garbage = reverse("kiosk-service", args=[service.pk]) + "?token=kst_" + "x" * 40
    guest = Client(REMOTE_ADDR=STORE)  # someone on the store's Wi-Fi

    for target in [garbage, retired_url, garbage.split("?")[0]] * 3:
        assert buy(guest, target).status_code == 404

    kiosk = Client(REMOTE_ADDR=STORE)
    assert [buy(kiosk, url).status_code for _ in range(2)] == [302, 302]
    assert PaymentSession.objects.count() == 2


def test_kiosks_behind_one_address_count_each_on_their_own(service, settings):
    rates(settings, kiosk_ticket="2/hour", payment_session_create="2/hour")
    entrance, hall = kiosk_url(service, "Entrada"), kiosk_url(service, "Salão")
    store = Client(REMOTE_ADDR=STORE)
    assert [buy(store, entrance).status_code for _ in range(2)] == [302, 302]
    assert_refused(buy(store, entrance))

    # The other kiosk, on the same address, still sells: a rush at one kiosk (or every
    # kiosk seen as one proxy's address) does not stop the others.
    assert [buy(store, hall).status_code for _ in range(2)] == [302, 302]
    assert PaymentSession.objects.count() == 4
    # And the count follows the kiosk, not the address it comes from.
    assert_refused(buy(Client(REMOTE_ADDR="198.51.100.8"), entrance))


def test_the_kiosk_and_anonymous_api_callers_at_its_address_have_separate_budgets(
    service, settings, test_purpose
):
    rates(settings, kiosk_ticket="2/hour", payment_session_create="2/hour")
    url = kiosk_url(service)
    guest = Client(REMOTE_ADDR=STORE)
    for n in range(2):
        assert create_session(guest, key=f"api-{n}", **KIOSK_TEA).status_code == 201
    assert create_session(guest, key="api-2", **KIOSK_TEA).status_code == 429

    kiosk = Client(REMOTE_ADDR=STORE)
    assert [buy(kiosk, url).status_code for _ in range(2)] == [302, 302]
    assert PaymentSession.objects.count() == 4


def test_the_simulate_button_is_not_counted(service, settings, kiosk_secret):
    rates(settings, kiosk_ticket="1/hour")
    settings.FAKE_PROVIDERS = True
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the simulated webhook goes nowhere
    url = kiosk_url(service)
    kiosk = Client(REMOTE_ADDR=STORE)
    waiting = buy(kiosk, url)
    assert waiting.status_code == 302
    reference = PaymentSession.objects.get().reference
    token = url.split("token=")[1]
    for _ in range(2):
        simulated = kiosk.post(
            reverse("kiosk-simulate", args=[reference]) + f"?token={token}",
            {"action": "approve"},
        )
        assert simulated.status_code == 302
        assert kiosk.get(waiting["Location"]).status_code == 200
    assert_refused(buy(kiosk, url))
