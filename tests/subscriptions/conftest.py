import uuid
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from fakeproviders import billing as fake_billing
from fakeproviders.billing import FakeBilling
from payments.services import wallet_adjust
from subscriptions.services.machines import machine_session_buy
from tests.conftest import processed
from tests.factories import PlanFactory, UserFactory
from tests.payments.conftest import *  # noqa: F403 - the provider fakes and helpers

CLICK_SERVICE = "31415"
CLICK_MERCHANT = "2718"
CLICK_SECRET = "click-secret-key-for-tests"
NP_KEY = "NPTESTAPIKEY0000"
NP_SECRET = "nowpayments-ipn-secret-for-tests"
CB_KEY = "coinbase-api-key-for-tests"
CB_SECRET = "coinbase-webhook-secret-for-tests"


@pytest.fixture
def billing(settings):
    """Provider settings for Click, NOWPayments and Coinbase, and their fake APIs. The fake's
    own callbacks go nowhere: tests post the callbacks through the test client."""
    nowhere = "http://127.0.0.1:9"
    fake = FakeBilling(
        click_service_id=CLICK_SERVICE,
        click_merchant_id=CLICK_MERCHANT,
        click_secret_key=CLICK_SECRET,
        nowpayments_api_key=NP_KEY,
        nowpayments_ipn_secret=NP_SECRET,
        coinbase_api_key=CB_KEY,
        coinbase_webhook_secret=CB_SECRET,
        click_prepare_url=nowhere + "/webhooks/click/prepare/",
        click_complete_url=nowhere + "/webhooks/click/complete/",
        coinbase_webhook_url=nowhere + "/webhooks/coinbase/",
    ).start()
    settings.CLICK_SERVICE_ID = CLICK_SERVICE
    settings.CLICK_MERCHANT_ID = CLICK_MERCHANT
    settings.CLICK_SECRET_KEY = CLICK_SECRET
    settings.CLICK_PAY_URL = fake.url + "/click/services/pay"
    settings.NOWPAYMENTS_API_KEY = NP_KEY
    settings.NOWPAYMENTS_IPN_SECRET = NP_SECRET
    settings.NOWPAYMENTS_API_BASE = fake.url + "/nowpayments"
    settings.COINBASE_COMMERCE_API_KEY = CB_KEY
    settings.COINBASE_COMMERCE_WEBHOOK_SECRET = CB_SECRET
    settings.COINBASE_COMMERCE_API_BASE = fake.url + "/coinbase"
    settings.PUBLIC_BASE_URL = "http://testserver"
    settings.PROVIDER_TIMEOUT_SECONDS = 3
    yield fake
    fake.stop()


@pytest.fixture
def plans(db):

    return {
        "uzs": PlanFactory(
            code="basic-uzs", name="Basic", tier="basic", price=Decimal("49000.00"), currency="UZS"
        ),
        "usd": PlanFactory(
            code="pro-usd", name="Pro", tier="pro", price=Decimal("9.99"), currency="USD"
        ),
    }


@pytest.fixture
def customer(db):
    return UserFactory(roles=["customer"])


_keys = iter(range(10**6))


def checkout(user, plan, provider: str, **kwargs):
    from subscriptions.services.plans import subscription_checkout

    return subscription_checkout(
        user=user,
        plan_code=plan.code,
        provider=provider,
        idempotency_key=kwargs.pop("key", f"test-key-{next(_keys)}"),
        **kwargs,
    )


def click_form(session_or_ref, action: int, *, amount="49000", trans_id="900001", **extra):
    reference = getattr(session_or_ref, "reference", session_or_ref)
    fields = dict(
        secret_key=extra.pop("secret_key", CLICK_SECRET),
        service_id=extra.pop("service_id", CLICK_SERVICE),
        click_trans_id=trans_id,
        merchant_trans_id=reference,
        amount=amount,
        action=str(action),
    )
    fields.update(extra)
    return fake_billing.click_fields(**fields)


def post_click(client, endpoint: str, fields: dict):
    return client.post(
        f"/webhooks/click/{endpoint}/",
        data=urlencode(fields),
        content_type="application/x-www-form-urlencoded",
    )


def post_nowpayments(client, obj, *, secret: str = NP_SECRET, body: bytes | None = None):
    """An IPN as NOWPayments sends it: the body as given (numbers as their tokens), the
    signature over the key-sorted serialisation."""
    text = body if body is not None else fake_billing.nowpayments_serialise(obj, sort_keys=False)
    return processed(
        client.post(
            "/webhooks/nowpayments/",
            data=text,
            content_type="application/json",
            headers={"x-nowpayments-sig": fake_billing.nowpayments_sign(obj, secret)},
        )
    )


def post_coinbase(client, body, *, secret: str = CB_SECRET, signature: str | None = None):
    import json

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return processed(
        client.post(
            "/webhooks/coinbase/",
            data=raw,
            content_type="application/json",
            headers={
                "x-cc-webhook-signature": fake_billing.coinbase_sign(raw, secret)
                if signature is None
                else signature
            },
        )
    )


def buy(customer, machine, method="pix", minutes=30):
    """Machine time bought the way the machine page buys it, with a fresh idempotency key."""
    return machine_session_buy(
        customer=customer,
        machine_code=machine.code,
        minutes=minutes,
        method=method,
        idempotency_key=uuid.uuid4().hex,
    )


def with_credit(amount="20.00"):
    """A new customer with `amount` of wallet credit."""
    customer = UserFactory()
    wallet_adjust(user=customer, amount=Decimal(amount), actor=UserFactory(), reason="credit")
    return customer
