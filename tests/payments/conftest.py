import base64
import json
from decimal import Decimal

import pytest

from fakeproviders.mercadopago import FakeMercadoPago
from notifications.services import event_publish
from payments.errors import InvalidParams
from payments.models import Provider
from payments.registry import Purpose, Quote, purpose_register
from tests.conftest import processed

MP_TOKEN = "TEST-access-token-for-tests-only"
MP_SECRET = "mp-webhook-secret-for-tests"
KIOSK_SECRET = "whsec_" + base64.b64encode(b"kiosk-terminal-secret-for-tests!").decode()


class TestPurchase(Purpose):
    """A purpose used by the payments tests: a fixed price, anonymous allowed, and a
    switch to make fulfilment fail."""

    name = "test_purchase"
    allow_anonymous = True
    providers = (Provider.KIOSK, Provider.MERCADOPAGO, Provider.WALLET)
    failing = False
    refusing = False

    def quote(self, *, params, user, amount, currency):
        if params.get("item") not in ("coffee", "tea"):
            raise InvalidParams("item must be coffee or tea")
        return Quote(Decimal("10.00"), "BRL", {"item": params["item"]}, "Test purchase")

    def fulfil(self, *, session):
        if self.failing:
            raise RuntimeError("the machine is on fire")
        if self.refusing:
            from payments.errors import FulfilmentRefused

            raise FulfilmentRefused("already delivered by another payment")
        event_publish(
            audience=f"payment:{session.reference}",
            type="test.fulfilled",
            payload={"reference": session.reference},
        )


TEST_PURPOSE = TestPurchase()
purpose_register(TEST_PURPOSE)


@pytest.fixture
def test_purpose():
    TEST_PURPOSE.failing = TEST_PURPOSE.refusing = False
    yield TEST_PURPOSE
    TEST_PURPOSE.failing = TEST_PURPOSE.refusing = False


@pytest.fixture
def mp_fake(settings):
    yield from mercadopago_fake_running(settings, FakeMercadoPago)


def mercadopago_fake_running(settings, fake_class):
    """Start `fake_class` (a FakeMercadoPago) and point Confirma's settings at it; a
    generator for fixtures to `yield from`, stopping the fake afterwards."""
    fake = fake_class(access_token=MP_TOKEN, webhook_secret=MP_SECRET).start()
    settings.MERCADOPAGO_API_BASE = fake.url
    settings.MERCADOPAGO_ACCESS_TOKEN = MP_TOKEN
    settings.MERCADOPAGO_WEBHOOK_SECRET = MP_SECRET
    settings.PROVIDER_TIMEOUT_SECONDS = 3
    # Notifications the fake sends by itself go nowhere (tests post them explicitly).
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    yield fake
    fake.stop()


@pytest.fixture
def kiosk_secret(settings):
    settings.KIOSK_WEBHOOK_SECRET = KIOSK_SECRET
    return KIOSK_SECRET


def post_mp(client, notification: dict):
    """Deliver a fake Mercado Pago notification through the real webhook URL."""
    from urllib.parse import urlencode

    return processed(
        client.post(
            "/webhooks/mercadopago/?" + urlencode(notification["query"]),
            data=notification["body"],
            content_type="application/json",
            headers={k: v for k, v in notification["headers"].items() if k != "content-type"},
        )
    )


def post_kiosk(client, headers: dict, body: bytes):
    return processed(
        client.post(
            "/webhooks/kiosk/",
            data=body,
            content_type="application/json",
            headers={k: v for k, v in headers.items() if k != "content-type"},
        )
    )


def create_session(client, *, key: str, **body):
    return client.post(
        "/api/payment-sessions/",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )


@pytest.fixture
def staff_client(client):
    """A client logged in as a staff superuser (`client.user`), as the admin pages need."""
    from tests.factories import UserFactory

    user = UserFactory(roles=["staff"], is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    return client
