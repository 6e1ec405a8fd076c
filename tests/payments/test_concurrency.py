"""Row locks under real concurrency, on PostgreSQL."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from payments.models import DeliveryStatus, LedgerEntry, PaymentStatus, WebhookDelivery
from payments.services import payment_session_create, wallet_account_get
from tests.factories import UserFactory
from tests.payments.conftest import post_mp

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_in_threads(count: int, target) -> list:
    results, barrier = [None] * count, threading.Barrier(count)

    def worker(index):
        barrier.wait()
        try:
            results[index] = target()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_twenty_simultaneous_deliveries_fulfil_exactly_once(mp_fake):
    user = UserFactory()
    session = payment_session_create(
        user=user,
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("30.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    mp_fake.set_status(session.provider_payment_id, "approve")
    notification = mp_fake.notification(session.provider_payment_id)

    codes = run_in_threads(20, lambda: post_mp(Client(), notification).status_code)

    assert codes == [200] * 20
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("30.00")
    assert session.audits.filter(action="fulfilled").count() == 1
    statuses = list(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses.count(DeliveryStatus.PROCESSED) == 1
    assert statuses.count(DeliveryStatus.DUPLICATE) == 19


def test_simultaneous_creates_with_one_key_make_one_session(mp_fake):
    user = UserFactory()

    def create():
        client = Client()
        client.force_login(user)
        return client.post(
            "/api/payment-sessions/",
            data={"purpose": "wallet_topup", "provider": "mercadopago", "amount": "5.00"},
            content_type="application/json",
            headers={"Idempotency-Key": "one-key"},
        )

    responses = run_in_threads(8, create)
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["reference"] for r in responses}) == 1


def test_concurrent_wallet_spends_never_overdraw(test_purpose):
    from payments.errors import InsufficientCredit
    from payments.services import wallet_adjust

    user = UserFactory()
    wallet_adjust(user=user, amount=Decimal("30.00"), actor=UserFactory(), reason="credit")

    def spend():
        try:
            payment_session_create(
                user=user,
                purpose="test_purchase",
                provider="wallet",
                params={"item": "tea"},
                idempotency_key=uuid.uuid4().hex,
            )
            return "paid"
        except InsufficientCredit:
            return "refused"

    results = run_in_threads(6, spend)
    assert results.count("paid") == 3 and results.count("refused") == 3
    assert wallet_account_get(user=user).balance == Decimal("0.00")
