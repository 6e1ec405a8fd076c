"""The wallet top-up page creates a payment at the provider like POST /api/payment-sessions/:
it counts against the same THROTTLE_PAYMENT_SESSION_CREATE budget, and beyond it answers
429 with the page and a message instead of creating anything."""

import json

import pytest

from payments.models import PaymentSession
from tests.factories import UserFactory
from tests.payments.conftest import create_session
from tests.payments.test_throttling import TOPUP, provider_creations, rates

pytestmark = pytest.mark.django_db

TOO_MANY = "Too many attempts; try again in"


def topup(client, amount="20.00", key=None, **kwargs):
    key = key or f"page-{PaymentSession.objects.count()}-{amount}"
    return client.post("/payments/topup/", {"amount": amount, "key": key}, **kwargs)


def assert_refused(response):
    """429, a Retry-After within the window, and the message on the page."""
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    seconds = int(response["Retry-After"])
    assert f"{TOO_MANY} {seconds} second" in response.content.decode()


def test_beyond_the_rate_the_top_up_page_answers_429_and_creates_nothing(client, settings, mp_fake):
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    assert [topup(client, amount=a).status_code for a in ("20.00", "25.00")] == [302, 302]

    refused = topup(client, amount="30.00")

    assert_refused(refused)
    page = refused.content.decode()
    # The wallet page itself, the amount typed kept in the form.
    assert 'id="wallet"' in page and 'value="30.00"' in page
    assert PaymentSession.objects.count() == 2 and provider_creations(mp_fake) == 2
    # The refusal is shown once, not again on the next page.
    assert TOO_MANY not in client.get("/payments/").content.decode()
    # Counted per user: someone else still tops up.
    client.force_login(UserFactory())
    assert topup(client).status_code == 302


def test_the_page_and_the_api_share_one_budget(client, settings, mp_fake):
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    assert create_session(client, key="api-0", **TOPUP).status_code == 201
    assert topup(client).status_code == 302

    assert_refused(topup(client, amount="30.00"))
    assert create_session(client, key="api-1", **TOPUP).status_code == 429
    assert PaymentSession.objects.count() == 2 and provider_creations(mp_fake) == 2


def test_the_page_spends_the_api_budget_too(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    client.force_login(UserFactory())
    assert topup(client).status_code == 302
    assert create_session(client, key="api-0", **TOPUP).status_code == 429
    assert PaymentSession.objects.count() == 1


def test_pages_and_simulate_buttons_are_not_counted(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    settings.FAKE_PROVIDERS = True
    client.force_login(UserFactory())
    for _ in range(3):
        assert client.get("/payments/").status_code == 200
    assert topup(client).status_code == 302
    reference = PaymentSession.objects.get().reference
    for _ in range(2):
        simulated = client.post(f"/payments/{reference}/simulate/", {"action": "approve"})
        assert simulated.status_code == 302
        assert client.get(f"/payments/{reference}/").status_code == 200
    assert_refused(topup(client, amount="30.00"))


def test_an_htmx_request_gets_the_message_alone_and_an_event(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    client.force_login(UserFactory())
    topup(client)

    refused = topup(client, amount="30.00", headers={"HX-Request": "true"})

    assert_refused(refused)
    assert "<html" not in refused.content.decode()
    event = json.loads(refused["HX-Trigger"])["confirma:throttled"]
    assert event["message"].startswith(TOO_MANY)
    assert event["retry_after"] == int(refused["Retry-After"])
    assert PaymentSession.objects.count() == 1


def test_an_empty_rate_turns_the_page_limit_off(client, settings, mp_fake):
    rates(settings, payment_session_create=None)
    client.force_login(UserFactory())
    assert [topup(client, amount=f"{20 + n}.00").status_code for n in range(3)] == [302] * 3
