"""POST /api/payment-sessions/ creates a payment at the provider on every new session: at
most THROTTLE_PAYMENT_SESSION_CREATE of them per user (or address), then 429."""

import logging
import socket
import uuid

import pytest
from django.test import Client

from payments.models import PaymentSession
from tests.factories import UserFactory
from tests.payments.conftest import create_session
from tests.payments.test_concurrency import run_in_threads

TOPUP = {"purpose": "wallet_topup", "provider": "mercadopago", "amount": "20.00"}
KIOSK_TEA = {"purpose": "test_purchase", "provider": "kiosk", "params": {"item": "tea"}}


def rates(settings, **scopes):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **scopes,
        },
    }


def provider_creations(mp_fake) -> int:
    return sum(1 for m, p, _ in mp_fake.requests_seen if m == "POST" and p == "/v1/payments")


@pytest.mark.django_db
def test_beyond_the_rate_the_api_answers_429_and_the_provider_is_not_called(
    client, settings, mp_fake
):
    rates(settings, payment_session_create="3/hour")
    client.force_login(UserFactory())
    for n in range(3):
        assert create_session(client, key=f"k-{n}", **TOPUP).status_code == 201

    refused = create_session(client, key="k-3", **TOPUP)

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    error = refused.json()["error"]
    assert error["code"] == "throttled"
    assert "throttled" in error["message"]
    assert 1 <= error["details"]["retry_after"] <= 3600
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert PaymentSession.objects.count() == 3 and provider_creations(mp_fake) == 3
    # Counted per user: someone else still pays.
    client.force_login(UserFactory())
    assert create_session(client, key="other-0", **TOPUP).status_code == 201


@pytest.mark.django_db
def test_the_limit_message_is_translated(client, settings, mp_fake):
    rates(settings, payment_session_create="1/hour")
    client.force_login(UserFactory())
    create_session(client, key="k-0", **TOPUP)
    refused = client.post(
        "/api/payment-sessions/",
        data=TOPUP,
        content_type="application/json",
        headers={"Idempotency-Key": "k-1", "Accept-Language": "pt-br"},
    )
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("Pedido foi suprimido")


@pytest.mark.django_db
def test_anonymous_callers_are_counted_by_address_which_they_cannot_forge(settings, test_purpose):
    rates(settings, payment_session_create="2/hour")
    kiosk = Client(REMOTE_ADDR="198.51.100.7")
    forged = [{"X-Forwarded-For": f"10.0.0.{n}"} for n in range(3)]
    codes = [
        kiosk.post(
            "/api/payment-sessions/",
            data=KIOSK_TEA,
            content_type="application/json",
            headers={"Idempotency-Key": uuid.uuid4().hex, **headers},
        ).status_code
        for headers in forged
    ]
    assert codes == [201, 201, 429]
    # Another address has counts of its own.
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert create_session(other, key="k", **KIOSK_TEA).status_code == 201


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_address_it_saw_is_counted(settings, test_purpose):
    rates(settings, payment_session_create="1/hour")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = Client(REMOTE_ADDR="127.0.0.1")

    def through_proxy(client_address):
        return proxy.post(
            "/api/payment-sessions/",
            data=KIOSK_TEA,
            content_type="application/json",
            headers={
                "Idempotency-Key": uuid.uuid4().hex,
                "X-Forwarded-For": f"10.9.9.9, {client_address}",
            },
        ).status_code

    assert through_proxy("198.51.100.7") == 201
    assert through_proxy("198.51.100.8") == 201
    assert through_proxy("198.51.100.7") == 429


@pytest.mark.django_db
def test_an_empty_rate_turns_the_limit_off(client, settings, test_purpose):
    rates(settings, payment_session_create=None)
    for n in range(4):
        assert create_session(client, key=f"k-{n}", **KIOSK_TEA).status_code == 201


@pytest.mark.django_db
def test_without_the_cache_sessions_are_still_created(client, settings, mp_fake, caplog):
    """Taking payments matters more than limiting them while Redis is away."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    rates(settings, payment_session_create="1/hour")
    client.force_login(UserFactory())
    with caplog.at_level(logging.WARNING, logger="core.throttling"):
        codes = [create_session(client, key=f"k-{n}", **TOPUP).status_code for n in range(2)]
    assert codes == [201, 201]
    assert "Throttling of payment_session_create skipped" in caplog.text


@pytest.mark.redis
@pytest.mark.django_db
def test_counts_are_kept_in_redis(client, settings, mp_fake):
    from tests.conftest import redis_url

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url(),
            "KEY_PREFIX": f"confirma-test-{uuid.uuid4().hex[:12]}",
        }
    }
    rates(settings, payment_session_create="2/hour")
    client.force_login(UserFactory())
    codes = [create_session(client, key=f"k-{n}", **TOPUP).status_code for n in range(3)]
    assert codes == [201, 201, 429]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_simultaneous_burst_gets_exactly_the_rate(settings, mp_fake):
    """Counting is atomic: twelve requests at once cannot all read "none yet" and pass."""
    rates(settings, payment_session_create="5/hour")
    user = UserFactory()

    def create():
        client = Client()
        client.force_login(user)
        return create_session(client, key=uuid.uuid4().hex, **TOPUP).status_code

    codes = run_in_threads(12, create)

    assert sorted(codes) == [201] * 5 + [429] * 7
    assert PaymentSession.objects.count() == 5 and provider_creations(mp_fake) == 5
