"""Row locks under real concurrency, on PostgreSQL: webhooks posted at once, webhook
workers running at once, a worker that dies holding claims."""

import json
import threading
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from payments.models import (
    DeliveryStatus,
    LedgerEntry,
    PaymentStatus,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.services import payment_session_create, wallet_account_get
from payments.services.deliveries import deliveries_claim, deliveries_drain, deliveries_run
from tests.factories import UserFactory

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


def post_raw(notification: dict) -> dict:
    """Post a Mercado Pago notification through the webhook URL and return what intake
    answered, without processing anything (the workers do that)."""
    response = Client().post(
        "/webhooks/mercadopago/?" + urlencode(notification["query"]),
        data=notification["body"],
        content_type="application/json",
        headers={k: v for k, v in notification["headers"].items() if k != "content-type"},
    )
    assert response.status_code == 200, response.content
    return response.json()


def distinct_notification(mp_fake, payment_id: str, number: int) -> dict:
    """A notification of the payment with an id of its own (Mercado Pago's ids come from
    the clock in the fake, and notifications made in one millisecond would share one)."""
    notification = mp_fake.notification(payment_id)
    body = json.loads(notification["body"])
    body["id"] = 10**12 + number
    notification["body"] = json.dumps(body)
    return notification


def workers_run(count: int, batch: int) -> list[Counter]:
    """`count` workers at once, each claiming and processing batches of `batch` until
    nothing is left; what each one processed, by outcome."""

    def work():
        name, outcomes = f"worker-{threading.get_ident()}", Counter()
        while True:
            done = deliveries_run(limit=batch, worker=name)
            if not done.processed:
                return outcomes
            outcomes.update(done.outcomes)

    return run_in_threads(count, work)


def a_topup(mp_fake, amount="30.00"):
    user = UserFactory()
    session = payment_session_create(
        user=user,
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal(amount),
        idempotency_key=uuid.uuid4().hex,
    ).session
    mp_fake.set_status(session.provider_payment_id, "approve")
    return user, session


def test_twenty_simultaneous_deliveries_fulfil_exactly_once(mp_fake):
    """Twenty different notifications of one payment, posted at once, are twenty
    deliveries; twenty workers processing them at once confirm and fulfil it once."""
    user, session = a_topup(mp_fake)
    notifications = [
        distinct_notification(mp_fake, session.provider_payment_id, n) for n in range(20)
    ]
    answers = run_in_threads(20, lambda: post_raw(notifications.pop()))
    assert [answer["status"] for answer in answers] == ["accepted"] * 20
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 20

    reports = workers_run(20, batch=1)

    assert sum(sum(report.values()) for report in reports) == 20  # each taken once
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("30.00")
    assert session.audits.filter(action="completed").count() == 1
    assert session.audits.filter(action="fulfilled").count() == 1
    statuses = list(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses.count(DeliveryStatus.PROCESSED) == 1
    assert statuses.count(DeliveryStatus.DUPLICATE) == 19
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_one_notification_posted_twenty_times_at_once_is_stored_once(mp_fake):
    """The same notification (one event id) arriving twenty times at once: one stored
    delivery, nineteen answered as its duplicates and only counted; fulfilled once."""
    user, session = a_topup(mp_fake)
    notification = mp_fake.notification(session.provider_payment_id)

    answers = run_in_threads(20, lambda: post_raw(notification))

    delivery = WebhookDelivery.objects.get()
    assert (
        sorted(answers, key=lambda answer: answer["status"])
        == [{"status": "accepted", "delivery": delivery.pk}]
        + [{"status": "duplicate", "delivery": delivery.pk}] * 19
    )
    refusals = WebhookRefusal.objects.filter(provider="mercadopago", reason="duplicate event")
    assert refusals.aggregate(total=Sum("count"))["total"] == 19
    report = deliveries_drain()
    assert report.as_dict()["succeeded"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("30.00")


def test_concurrent_workers_never_process_a_delivery_twice(mp_fake):
    """Six workers at once on twelve waiting deliveries (twelve payments): each delivery
    is claimed and processed by exactly one of them."""
    topups = [a_topup(mp_fake, amount=f"{n + 1}.00") for n in range(12)]
    for n, (_, session) in enumerate(topups):
        post_raw(distinct_notification(mp_fake, session.provider_payment_id, n))
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 12

    reports = workers_run(6, batch=2)

    assert sum(sum(report.values()) for report in reports) == 12
    assert sum(report[DeliveryStatus.PROCESSED] for report in reports) == 12
    for delivery in WebhookDelivery.objects.all():
        assert (delivery.status, delivery.attempts, delivery.claimed_by) == (
            DeliveryStatus.PROCESSED,
            1,
            "",
        )
    for user, session in topups:
        assert LedgerEntry.objects.filter(session=session).count() == 1
        assert session.audits.filter(action="fulfilled").count() == 1
        assert wallet_account_get(user=user).balance == session.amount


def test_a_dead_workers_claims_return_after_its_lease(mp_fake):
    """A worker killed mid-batch leaves its claims: nobody takes them while its lease
    lasts; when it has ended, another worker processes each of them once."""
    topups = [a_topup(mp_fake) for _ in range(3)]
    for n, (_, session) in enumerate(topups):
        post_raw(distinct_notification(mp_fake, session.provider_payment_id, n))

    claimed = deliveries_claim(limit=2, worker="dead")  # and never processed
    held = [delivery.pk for delivery in claimed]
    assert len(held) == 2

    # Another worker takes only the delivery nobody holds.
    assert deliveries_run(worker="alive").processed == 1
    assert deliveries_run(worker="alive").processed == 0
    for delivery in WebhookDelivery.objects.filter(pk__in=held):
        assert (delivery.status, delivery.claimed_by) == (DeliveryStatus.RECEIVED, "dead")
        assert delivery.next_attempt_at > timezone.now()

    # The lease ends.
    WebhookDelivery.objects.filter(pk__in=held).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    reports = workers_run(3, batch=1)
    assert sum(sum(report.values()) for report in reports) == 2
    for delivery in WebhookDelivery.objects.filter(pk__in=held):
        # Claimed once by the dead worker, once by the one that processed it.
        assert (delivery.status, delivery.attempts, delivery.claimed_by) == (
            DeliveryStatus.PROCESSED,
            2,
            "",
        )
    for user, session in topups:
        assert LedgerEntry.objects.filter(session=session).count() == 1
        assert wallet_account_get(user=user).balance == Decimal("30.00")
    assert deliveries_run().processed == 0


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
