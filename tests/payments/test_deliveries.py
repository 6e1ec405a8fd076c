"""The webhook workers' batches: one failing notification never holds back the rest, and
a worker whose lease ran out never overwrites the outcome another worker recorded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import PaymentSession, WebhookDelivery
from payments.providers.kiosk import kiosk_notification
from payments.services import payment_session_create
from payments.services.deliveries import deliveries_claim, deliveries_process, deliveries_run
from tests.payments.conftest import post_kiosk

pytestmark = pytest.mark.django_db


def _session(key: str) -> PaymentSession:
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        idempotency_key=key,
        params={"item": "tea"},
    ).session


def _store(client, secret, session, *, transaction_id=None):
    headers, body = kiosk_notification(
        secret=secret,
        reference=session.reference,
        amount=str(session.amount),
        currency=session.currency,
        transaction_id=transaction_id,
    )
    response = client.post(
        "/webhooks/kiosk/",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "content-type"},
    )
    assert response.json()["status"] == "accepted"
    return response.json()["delivery"]


def test_one_failing_notification_is_retried_alone_and_the_batch_goes_through(
    client, kiosk_secret, test_purpose
):
    # A provider payment id already held by another session: applying it is refused, and
    # the whole batch's transaction with it; the others must still be confirmed.
    holder = _session("holder")
    post_kiosk(client, *_signed(kiosk_secret, holder, transaction_id="tx_taken"))
    sessions = [_session(f"batch-{n}") for n in range(5)]
    deliveries = [
        _store(
            client,
            kiosk_secret,
            session,
            transaction_id="tx_taken" if n == 2 else None,
        )
        for n, session in enumerate(sessions)
    ]
    report = deliveries_run(limit=10)
    assert report.outcomes == {"processed": 4, "failed": 1}
    statuses = dict(WebhookDelivery.objects.filter(pk__in=deliveries).values_list("pk", "status"))
    assert [statuses[pk] for pk in deliveries] == ["processed"] * 2 + ["failed"] + ["processed"] * 2
    failed = WebhookDelivery.objects.get(pk=deliveries[2])
    assert failed.next_attempt_at > timezone.now() and "belongs to another session" in failed.error
    completed = PaymentSession.objects.filter(pk__in=[s.pk for s in sessions], status="completed")
    assert completed.count() == 4
    assert not completed.filter(pk=sessions[2].pk).exists()


def _signed(secret, session, **fields):
    headers, body = kiosk_notification(
        secret=secret,
        reference=session.reference,
        amount=str(session.amount),
        currency=session.currency,
        **fields,
    )
    return headers, body


def test_a_worker_whose_lease_ran_out_never_overwrites_the_recorded_outcome(
    client, kiosk_secret, test_purpose
):
    session = _session("slow")
    pk = _store(client, kiosk_secret, session)
    (slow,) = deliveries_claim(limit=1, worker="slow")
    # The slow worker's lease ends; another worker takes the delivery and processes it.
    WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=timezone.now() - timedelta(1))
    assert deliveries_run(worker="other").outcomes == {"processed": 1}
    recorded = WebhookDelivery.objects.get(pk=pk)
    assert (recorded.status, recorded.attempts) == ("processed", 2)
    # The slow worker finishes at last: its result does not replace the recorded one.
    deliveries_process([slow])
    again = WebhookDelivery.objects.get(pk=pk)
    assert (again.status, again.attempts, again.processed_at) == (
        "processed",
        2,
        recorded.processed_at,
    )
    assert PaymentSession.objects.get(pk=session.pk).audits.filter(action="completed").count() == 1
