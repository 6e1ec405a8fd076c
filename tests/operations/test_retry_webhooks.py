"""`retry_webhooks`: due failed deliveries are retried with back-off until they succeed
or go dead (one alert), and never processed twice at once alongside the retry task (which
only a person or a script queues: the workers take due retries by themselves)."""

import io
import json
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import Alert, Event
from payments.models import DeliveryStatus, PaymentStatus, WebhookDelivery
from payments.services import payment_session_create, wallet_account_get
from payments.services.deliveries import delivery_retry
from payments.tasks import webhook_delivery_retry
from tests.factories import UserFactory
from tests.payments.conftest import (  # noqa: F401 - the fake provider fixtures
    kiosk_secret,
    mp_fake,
    post_mp,
    test_purpose,
)

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("retry_webhooks", "--json", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def failed_delivery(client, mp_fake) -> WebhookDelivery:  # noqa: F811
    """A Mercado Pago notification that arrived while the provider's API was down: stored
    at intake, then failed by the worker that could not fetch the payment."""
    session = payment_session_create(
        user=UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("25.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    mp_fake.set_status(session.provider_payment_id, "approve")
    mp_fake.outage = True
    response = post_mp(client, mp_fake.notification(session.provider_payment_id))
    assert response.status_code == 200 and response.json()["status"] == DeliveryStatus.FAILED
    delivery = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    assert (delivery.attempts, delivery.response_status) == (1, 503)
    return delivery


def make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def wait_of(delivery) -> float:
    """Seconds between the last attempt and the next one."""
    delivery.refresh_from_db()
    return (delivery.next_attempt_at - delivery.processed_at).total_seconds()


@pytest.mark.django_db
def test_retries_back_off_then_go_dead_with_one_alert(client, mp_fake, settings):  # noqa: F811
    settings.WEBHOOK_RETRY_MAX_ATTEMPTS = 4
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    delivery = failed_delivery(client, mp_fake)
    assert wait_of(delivery) == pytest.approx(base, abs=1)

    # Not due yet: nothing to do.
    assert run() == (0, {"retried": 0, "succeeded": 0, "failed": 0, "dead": 0, "rejected": 0})

    waits = []
    for _attempt in (2, 3):
        make_due(delivery)
        code, counts = run()
        assert (code, counts["retried"], counts["failed"]) == (1, 1, 1)
        waits.append(wait_of(delivery))
    assert waits == [pytest.approx(2 * base, abs=1), pytest.approx(4 * base, abs=1)]

    make_due(delivery)
    code, counts = run()
    assert (code, counts["dead"]) == (1, 1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("dead", 4, None)

    # A dead delivery is not retried again, and staff heard about it once.
    assert run() == (0, {"retried": 0, "succeeded": 0, "failed": 0, "dead": 0, "rejected": 0})
    alert = Alert.objects.get(code="webhook.dead")
    assert (alert.count, alert.dedupe_key) == (1, f"delivery:{delivery.pk}")
    assert alert.context["delivery"] == delivery.pk
    assert Event.objects.filter(type="alert.raised", payload__code="webhook.dead").count() == 1


@pytest.mark.django_db
def test_a_retry_that_succeeds_completes_the_payment_and_exits_0(client, mp_fake):  # noqa: F811
    delivery = failed_delivery(client, mp_fake)
    mp_fake.outage = False
    make_due(delivery)
    out = io.StringIO()
    call_command("retry_webhooks", stdout=out)
    assert out.getvalue().strip() == (
        "retried 1 webhook deliveries: 1 succeeded, 0 failed again, 0 rejected, 0 dead"
    )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("processed", 2, None)
    assert delivery.session.status == PaymentStatus.COMPLETED
    assert wallet_account_get(user=delivery.session.user).balance == Decimal("25.00")
    # A retry task run for it afterwards finds nothing left to do.
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("processed", 2)


@pytest.mark.django_db
def test_claims_of_a_dead_worker_are_retried_after_their_lease(client, mp_fake):  # noqa: F811
    """A worker that died holding a claim: the command leaves the delivery alone while the
    lease lasts, and processes it once when the lease has ended."""
    from urllib.parse import urlencode

    from payments.services.deliveries import deliveries_claim

    session = payment_session_create(
        user=UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("25.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    mp_fake.set_status(session.provider_payment_id, "approve")
    notification = mp_fake.notification(session.provider_payment_id)
    intake = client.post(
        "/webhooks/mercadopago/?" + urlencode(notification["query"]),
        data=notification["body"],
        content_type="application/json",
        headers={k: v for k, v in notification["headers"].items() if k != "content-type"},
    ).json()
    assert intake["status"] == "accepted"
    [delivery] = deliveries_claim(limit=10, worker="dead")  # and never processed

    assert run() == (0, {"retried": 0, "succeeded": 0, "failed": 0, "dead": 0, "rejected": 0})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claimed_by) == (DeliveryStatus.RECEIVED, "dead")

    make_due(delivery)  # the lease has ended
    assert run() == (0, {"retried": 1, "succeeded": 1, "failed": 0, "dead": 0, "rejected": 0})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PROCESSED, 2)
    assert wallet_account_get(user=session.user).balance == Decimal("25.00")
    assert run()[1]["retried"] == 0


@pytest.mark.django_db
def test_the_task_only_retries_a_delivery_that_is_still_failed_and_due(client, mp_fake):  # noqa: F811
    delivery = failed_delivery(client, mp_fake)
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"  # not due
    make_due(delivery)
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "503"
    # A second task for the same due time finds the next attempt not due yet.
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
    delivery.refresh_from_db()
    assert delivery.attempts == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_locked_delivery_is_skipped_by_both_the_task_and_the_command(client, mp_fake):  # noqa: F811
    delivery = failed_delivery(client, mp_fake)
    make_due(delivery)
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
        assert run()[1]["retried"] == 0
    finally:
        release.set()
        holder.join(10)
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert run()[1]["retried"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retriers_process_a_delivery_once(client, mp_fake):  # noqa: F811
    delivery = failed_delivery(client, mp_fake)
    make_due(delivery)
    racers, barrier, outcomes = 6, threading.Barrier(6), []

    def retry(as_command: bool):
        try:
            barrier.wait(10)
            if as_command:
                outcomes.append(f"command:{run()[1]['retried']}")
            else:
                outcomes.append("task:" + delivery_retry(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=retry, args=(n % 2 == 0,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    worked = [o for o in outcomes if o in ("command:1", "task:503")]
    assert len(outcomes) == racers and len(worked) == 1, outcomes
    delivery.refresh_from_db()
    assert delivery.attempts == 2


@pytest.mark.django_db
def test_bad_input_is_refused_with_status_2():
    with pytest.raises(CommandError, match="at least 1") as caught:
        call_command("retry_webhooks", "--limit", "0")
    assert caught.value.returncode == 2


def test_it_runs_every_30_seconds():
    jobs = {job["command"]: job["every"] for job in django_settings.PERIODIC_JOBS}
    assert jobs["retry_webhooks"] == 30


@pytest.mark.django_db
def test_new_deliveries_are_left_to_the_workers_for_a_lease(client, settings, kiosk_secret):  # noqa: F811
    """The safety net does not race the workers for what just arrived; a delivery no
    worker took within WEBHOOK_LEASE_SECONDS it takes (no worker may be running)."""
    from datetime import timedelta

    from tests.payments.test_deliveries import _session, _store

    pk = _store(client, kiosk_secret, _session("safety-net"))
    run()
    assert WebhookDelivery.objects.get(pk=pk).status == DeliveryStatus.RECEIVED
    waited = timezone.now() - timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS + 1)
    WebhookDelivery.objects.filter(pk=pk).update(received_at=waited)
    run()
    assert WebhookDelivery.objects.get(pk=pk).status == DeliveryStatus.PROCESSED
