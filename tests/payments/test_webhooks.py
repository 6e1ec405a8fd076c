"""Webhooks: verified the provider's way first, stored once, applied by the workers
through the one path. A refused request is answered 4xx and only counted."""

import io
import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from payments.models import (
    DeliveryStatus,
    LedgerEntry,
    PaymentStatus,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.providers.kiosk import kiosk_notification
from payments.services import payment_session_create, wallet_account_get
from payments.services.deliveries import deliveries_run
from tests.conftest import processed
from tests.factories import UserFactory
from tests.payments.conftest import KIOSK_SECRET, post_kiosk, post_mp

pytestmark = pytest.mark.django_db


def refused(reason: str, provider: str | None = None) -> int:
    """How many requests were refused for `reason` (summed over the hours they fell in)."""
    rows = WebhookRefusal.objects.filter(reason=reason)
    if provider:
        rows = rows.filter(provider=provider)
    return rows.aggregate(total=Sum("count"))["total"] or 0


def make_due(delivery) -> None:
    """Let a failed delivery's back-off end now."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def topup(user, amount="25.00"):
    return payment_session_create(
        user=user,
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal(amount),
        idempotency_key=uuid.uuid4().hex,
    ).session


def kiosk_session():
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "coffee"},
        idempotency_key=uuid.uuid4().hex,
    ).session


# --- Mercado Pago ------------------------------------------------------------------------


def test_mercadopago_valid_notification_confirms_and_fulfils(client, mp_fake):
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    response = post_mp(client, mp_fake.notification(session.provider_payment_id))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed"
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    delivery = WebhookDelivery.objects.get()
    assert delivery.signature_valid is True
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.session == session
    assert session.audits.get(action="completed").delivery == delivery
    # The SDK fetched the payment from the (fake) API with our token.
    assert any(
        method == "GET" and path.endswith(session.provider_payment_id)
        for method, path, _ in mp_fake.requests_seen
    )


def _forged(mp_fake, session, how):
    notification = mp_fake.notification(session.provider_payment_id)
    if how == "tampered_id":
        notification["query"]["data.id"] = "999" + session.provider_payment_id
    elif how == "wrong_secret":
        notification = mp_fake.notification(session.provider_payment_id, secret="not-the-secret")
    elif how == "missing_header":
        del notification["headers"]["x-signature"]
    elif how == "old_timestamp":
        notification = mp_fake.notification(session.provider_payment_id, ts=int(time.time()) - 3600)
    elif how == "tampered_request_id":
        notification["headers"]["x-request-id"] = str(uuid.uuid4())
    return notification


@pytest.mark.parametrize(
    "how", ["tampered_id", "wrong_secret", "missing_header", "old_timestamp", "tampered_request_id"]
)
def test_mercadopago_forged_notifications_are_rejected(client, mp_fake, how):
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    response = post_mp(client, _forged(mp_fake, session, how))
    assert response.status_code == 401
    # Refused before anything is stored: counted, never kept as a delivery.
    assert not WebhookDelivery.objects.exists()
    assert refused("invalid signature", "mercadopago") == 1
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()
    assert not any(
        path.endswith(session.provider_payment_id) for _, path, _ in mp_fake.requests_seen
    )


def test_mercadopago_same_notification_five_times_gives_one_ledger_entry(client, mp_fake):
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    notification = mp_fake.notification(session.provider_payment_id)
    answers = [post_mp(client, notification) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5
    # The first is stored and processed; the repeats of its event are answered as
    # duplicates of it and only counted.
    delivery = WebhookDelivery.objects.get()
    assert [answer.json() for answer in answers[1:]] == [
        {"status": "duplicate", "delivery": delivery.pk}
    ] * 4
    assert answers[0].json()["status"] == "processed"
    assert delivery.status == DeliveryStatus.PROCESSED
    assert refused("duplicate event", "mercadopago") == 4
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert session.audits.filter(action="fulfilled").count() == 1


def test_mercadopago_distinct_notifications_of_one_payment_fulfil_once(client, mp_fake):
    """Mercado Pago may notify one payment several times under different ids: each is a
    delivery of its own, and the payment is confirmed once."""
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    statuses = []
    for number in range(3):
        notification = mp_fake.notification(session.provider_payment_id)
        notification["body"] = notification["body"].replace('"id": ', f'"id": 9{number}', 1)
        statuses.append(post_mp(client, notification).json()["status"])
    assert statuses == ["processed", "duplicate", "duplicate"]
    assert WebhookDelivery.objects.count() == 3
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("25.00")


def test_mercadopago_pending_after_approved_changes_nothing(client, mp_fake):
    session = topup(UserFactory())
    mp_fake.set_status(session.provider_payment_id, "approve")
    post_mp(client, mp_fake.notification(session.provider_payment_id))
    mp_fake.set_status(session.provider_payment_id, "pend")
    assert post_mp(client, mp_fake.notification(session.provider_payment_id)).status_code == 200
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED


def test_mercadopago_rejected_and_expired_close_the_session(client, mp_fake):
    rejected, expired = topup(UserFactory()), topup(UserFactory())
    mp_fake.set_status(rejected.provider_payment_id, "reject")
    mp_fake.set_status(expired.provider_payment_id, "expire")
    post_mp(client, mp_fake.notification(rejected.provider_payment_id))
    post_mp(client, mp_fake.notification(expired.provider_payment_id))
    rejected.refresh_from_db()
    expired.refresh_from_db()
    assert rejected.status == PaymentStatus.FAILED
    assert expired.status == PaymentStatus.EXPIRED


def test_mercadopago_api_down_is_kept_failed_and_a_due_retry_completes(client, mp_fake):
    """The provider's API down while a worker fetches: accepted at intake (stored), the
    delivery failed with a back-off, nothing confirmed; once the API is back and the
    back-off has ended, a worker confirms the payment once."""
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    mp_fake.outage = True
    response = post_mp(client, mp_fake.notification(session.provider_payment_id))
    assert response.status_code == 200
    assert response.intake["status"] == "accepted"
    assert response.json()["status"] == DeliveryStatus.FAILED
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.response_status == 503
    assert delivery.next_attempt_at > timezone.now()
    assert "ProviderUnavailable" in delivery.error
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING

    mp_fake.outage = False
    assert deliveries_run().processed == 0  # not due yet: the back-off holds it
    make_due(delivery)
    assert deliveries_run().as_dict()["succeeded"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED and delivery.attempts == 2
    assert delivery.next_attempt_at is None
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert deliveries_run().processed == 0  # settled: never taken again


def test_replay_command_of_a_failed_delivery_is_a_new_linked_delivery(client, mp_fake):
    """`replay_webhooks --failed` replays a failed delivery as a new one, linked to it; the
    original keeps its outcome and, retried later, finds the payment already confirmed."""
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    mp_fake.outage = True
    post_mp(client, mp_fake.notification(session.provider_payment_id))
    original = WebhookDelivery.objects.get()
    assert original.status == DeliveryStatus.FAILED

    mp_fake.outage = False
    out = io.StringIO()
    call_command("replay_webhooks", "--failed", stdout=out)
    replay = WebhookDelivery.objects.get(replay_of=original)
    assert out.getvalue().strip() == (
        f"delivery {original.pk}: replayed as delivery {replay.pk}: processed"
    )
    assert replay.status == DeliveryStatus.PROCESSED and replay.session == session
    assert replay.requested_by is None  # from the command line, not a person's admin action
    original.refresh_from_db()
    assert (original.status, original.attempts) == (DeliveryStatus.FAILED, 1)
    assert wallet_account_get(user=user).balance == Decimal("25.00")

    make_due(original)
    deliveries_run()
    original.refresh_from_db()
    assert original.status == DeliveryStatus.DUPLICATE
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert session.audits.filter(action="fulfilled").count() == 1


def test_replay_command_by_id_leaves_a_processed_delivery_as_it_was(client, mp_fake):
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    post_mp(client, mp_fake.notification(session.provider_payment_id))
    original = WebhookDelivery.objects.get()
    out = io.StringIO()
    call_command("replay_webhooks", "--id", str(original.pk), stdout=out)
    replay = WebhookDelivery.objects.get(replay_of=original)
    assert out.getvalue().strip() == (
        f"delivery {original.pk}: replayed as delivery {replay.pk}: duplicate"
    )
    original.refresh_from_db()
    assert original.status == DeliveryStatus.PROCESSED and original.attempts == 1
    assert replay.status == DeliveryStatus.DUPLICATE
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert wallet_account_get(user=user).balance == Decimal("25.00")


def test_mercadopago_failed_fetch_backs_off_without_a_task_per_delivery(
    client, mp_fake, settings, django_capture_on_commit_callbacks
):
    """The back-off is the delivery's `next_attempt_at`, which the workers honour; no
    retry task is queued per delivery (the task remains for a person to run)."""
    from django_tasks_db.models import DBTaskResult

    session = topup(UserFactory())
    mp_fake.outage = True
    with django_capture_on_commit_callbacks(execute=True):
        post_mp(client, mp_fake.notification(session.provider_payment_id))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert not DBTaskResult.objects.filter(
        task_path="payments.tasks.webhook_delivery_retry"
    ).exists()
    assert (delivery.next_attempt_at - delivery.processed_at).total_seconds() == pytest.approx(
        settings.WEBHOOK_RETRY_BASE_SECONDS, abs=1
    )


def test_mercadopago_other_topics_are_ignored(client, mp_fake):
    from fakeproviders.mercadopago import sign_notification

    signature = sign_notification(
        secret=mp_fake.webhook_secret, data_id="77", request_id="req-1", ts=int(time.time())
    )
    response = client.post(
        "/webhooks/mercadopago/?data.id=77&type=merchant_order",
        data='{"type": "merchant_order", "data": {"id": "77"}}',
        content_type="application/json",
        headers={"x-signature": signature, "x-request-id": "req-1"},
    )
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_mercadopago_unsigned_request_is_rejected(client, mp_fake):
    response = client.post(
        "/webhooks/mercadopago/?data.id=1&type=payment", data="{}", content_type="application/json"
    )
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()
    assert refused("invalid signature", "mercadopago") == 1


def test_mercadopago_unknown_payment_reference_is_ignored(client, mp_fake):
    # No session has the reference or the payment id: nothing is confirmed (the money is
    # kept for staff: tests/payments/test_unmatched_money.py).
    payment = mp_fake.receive_outside("25.00", external_reference="ps_not_ours")
    response = post_mp(client, mp_fake.notification(payment["id"]))
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


# --- Kiosk terminal ----------------------------------------------------------------------


def test_kiosk_valid_notification_confirms(client, kiosk_secret, test_purpose):
    session = kiosk_session()
    headers, body = kiosk_notification(
        secret=kiosk_secret, reference=session.reference, amount="10.00", transaction_id="tx-42"
    )
    response = post_kiosk(client, headers, body)
    assert response.status_code == 200, response.content
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert session.provider_payment_id == "tx-42"
    assert WebhookDelivery.objects.get().event_id == headers["webhook-id"]


@pytest.mark.parametrize(
    "how",
    [
        "tampered_body",
        "wrong_secret",
        "missing_header",
        "old_timestamp",
        "future_timestamp",
        "garbage_signature",
    ],
)
def test_kiosk_forged_notifications_are_rejected(client, kiosk_secret, test_purpose, how):
    session = kiosk_session()
    kwargs = {"secret": kiosk_secret, "reference": session.reference, "amount": "10.00"}
    if how == "wrong_secret":
        kwargs["secret"] = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    if how == "old_timestamp":
        kwargs["timestamp"] = time.time() - 600
    if how == "future_timestamp":
        kwargs["timestamp"] = time.time() + 600
    headers, body = kiosk_notification(**kwargs)
    if how == "tampered_body":
        body = body.replace(b'"10.00"', b'"0.01"')
    if how == "missing_header":
        del headers["webhook-signature"]
    if how == "garbage_signature":
        headers["webhook-signature"] = "v1"
    response = post_kiosk(client, headers, body)
    assert response.status_code == 401
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
    assert not WebhookDelivery.objects.exists()
    assert refused("invalid signature", "kiosk") == 1


def test_kiosk_duplicate_webhook_id_is_a_duplicate(client, kiosk_secret, test_purpose):
    session = kiosk_session()
    headers, body = kiosk_notification(secret=kiosk_secret, reference=session.reference)
    assert [post_kiosk(client, headers, body).json()["status"] for _ in range(3)] == [
        "processed",
        "duplicate",
        "duplicate",
    ]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert refused("duplicate event", "kiosk") == 2


def test_kiosk_failed_payment_fails_the_session(client, kiosk_secret, test_purpose):
    session = kiosk_session()
    headers, body = kiosk_notification(
        secret=kiosk_secret, reference=session.reference, status="failed"
    )
    assert post_kiosk(client, headers, body).status_code == 200
    session.refresh_from_db()
    assert session.status == PaymentStatus.FAILED


def test_kiosk_malformed_but_signed_payload_is_400(client, kiosk_secret):
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    body = '{"reference": "ps_x", "status": "teleported"'
    ts = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": Webhook(kiosk_secret).sign(
            "msg_1", datetime.fromtimestamp(ts, UTC), body
        ),
    }
    response = post_kiosk(client, headers, body.encode())
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()
    assert refused("malformed payload", "kiosk") == 1


# --- What is kept of a refused request ------------------------------------------------------


def test_oversized_body_is_refused_with_413_and_only_a_sample_kept(client, settings, kiosk_secret):
    settings.WEBHOOK_MAX_BODY_BYTES = 4096
    response = client.post("/webhooks/kiosk/", data=b"x" * 5000, content_type="application/json")
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()
    refusal = WebhookRefusal.objects.get()
    assert (refusal.provider, refusal.reason, refusal.response_status) == (
        "kiosk",
        "body too large",
        413,
    )
    # The size and a hash of what was read, and at most its first 1 KB: never the body.
    assert refusal.body_size == 5000 and len(bytes(refusal.body_head)) == 1024
    assert len(refusal.body_sha256) == 64


def test_wrong_method_is_counted_and_refused(client):
    assert client.get("/webhooks/kiosk/").status_code == 405
    assert not WebhookDelivery.objects.exists()
    assert WebhookRefusal.objects.get().response_status == 405
    assert refused("method not allowed", "kiosk") == 1


def test_repeated_refusals_are_counted_in_one_row_per_hour(client, kiosk_secret):
    for _ in range(3):
        response = client.post("/webhooks/kiosk/", data="{}", content_type="application/json")
        assert response.status_code == 401
    assert refused("invalid signature", "kiosk") == 3
    assert WebhookRefusal.objects.count() < 3  # one row an hour (two, across an hour's end)
    assert not WebhookDelivery.objects.exists()


def test_secret_headers_are_redacted_in_the_log(client, kiosk_secret, test_purpose):
    secret_headers = {"Authorization": "Bearer very-secret-token", "X-Extra": "kept"}
    # Refused (unsigned): the sample of its headers keeps no secret.
    client.post(
        "/webhooks/kiosk/", data="{}", content_type="application/json", headers=secret_headers
    )
    sample = WebhookRefusal.objects.get().headers_head
    assert "very-secret-token" not in sample
    assert "authorization: [redacted]" in sample and "x-extra: kept" in sample
    # Accepted (signed): the stored headers keep no secret either.
    headers, body = kiosk_notification(secret=kiosk_secret, reference=kiosk_session().reference)
    post_kiosk(client, {**headers, **secret_headers}, body)
    stored = WebhookDelivery.objects.get().headers
    assert stored["authorization"] == "[redacted]"
    assert stored["x-extra"] == "kept"


def test_replay_command_validates_its_arguments():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("replay_webhooks")
    with pytest.raises(CommandError):
        call_command("replay_webhooks", "--id", "424242")


@pytest.mark.parametrize(
    "change",
    [
        {"amount": ""},
        {"currency": None},
        {"currency": "BRLX"},
        {"amount": "1e20"},
        {"amount": "NaN"},
        {"amount": True},
    ],
)
def test_kiosk_paid_without_a_usable_amount_is_400_and_changes_nothing(
    client, kiosk_secret, test_purpose, change
):
    import json as jsonlib
    from datetime import UTC, datetime

    from standardwebhooks.webhooks import Webhook

    session = kiosk_session()
    body = {
        "transaction_id": "tx-9",
        "reference": session.reference,
        "status": "paid",
        "amount": "10.00",
        "currency": "BRL",
        **change,
    }
    raw = jsonlib.dumps(body)
    ts = int(time.time())
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": str(ts),
        "webhook-signature": Webhook(kiosk_secret).sign(
            "msg_x", datetime.fromtimestamp(ts, UTC), raw
        ),
    }
    response = post_kiosk(client, headers, raw.encode())
    assert response.status_code == 400
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
    assert not WebhookDelivery.objects.exists()
    assert refused("malformed payload", "kiosk") == 1


def test_mercadopago_notification_for_an_unknown_payment_is_ignored(client, mp_fake):
    from fakeproviders.mercadopago import sign_notification

    signature = sign_notification(
        secret=mp_fake.webhook_secret, data_id="123456", request_id="req-404", ts=int(time.time())
    )
    response = processed(
        client.post(
            "/webhooks/mercadopago/?data.id=123456&type=payment",
            data='{"type": "payment", "data": {"id": "123456"}}',
            content_type="application/json",
            headers={"x-signature": signature, "x-request-id": "req-404"},
        )
    )
    assert response.status_code == 200 and response.intake["status"] == "accepted"
    assert response.json()["status"] == "ignored"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_mercadopago_rejecting_our_token_is_a_retryable_503(client, mp_fake, settings):
    session = topup(UserFactory())
    notification = mp_fake.notification(session.provider_payment_id)
    settings.MERCADOPAGO_ACCESS_TOKEN = "TEST-rotated-token"
    response = post_mp(client, notification)
    assert response.status_code == 200 and response.json()["status"] == DeliveryStatus.FAILED
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.response_status == 503
    assert delivery.next_attempt_at > timezone.now()  # retried: a rotated token is ours to fix


def test_refusals_are_logged_once_an_hour_under_the_clients_address(client, settings, caplog):
    """Behind the proxy, a refusal is counted under the address the proxy saw; repeats are
    counted, not logged (neither by intake nor as Django's per-request warning)."""
    import logging

    from payments.models import WebhookRefusal

    settings.TRUSTED_PROXY_COUNT = 1
    settings.KIOSK_WEBHOOK_SECRET = KIOSK_SECRET
    caplog.set_level(logging.INFO)
    for _ in range(5):
        response = client.post(
            "/webhooks/kiosk/",
            data=b'{"forged": true}',
            content_type="application/json",
            headers={"webhook-id": "msg_x", "x-forwarded-for": "203.0.113.7"},
        )
        assert response.status_code == 401
    (refusal,) = WebhookRefusal.objects.all()
    assert (refusal.remote_addr, refusal.count) == ("203.0.113.7", 5)
    refused = [r for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(refused) == 1
    assert not [r for r in caplog.records if r.name == "django.request"]


def test_mercadopago_notification_id_that_no_database_can_hold_is_still_taken_in(client, mp_fake):
    # The body is not covered by Mercado Pago's signature; an id with a lone surrogate
    # cannot be stored or compared: the notification is kept without an event id.
    user = UserFactory()
    session = topup(user)
    mp_fake.set_status(session.provider_payment_id, "approve")
    notification = mp_fake.notification(session.provider_payment_id)
    body = json.loads(notification["body"])
    body["id"] = "\ud800"
    notification["body"] = json.dumps(body)  # ASCII, with the escape as sent
    response = post_mp(client, notification)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed"
    assert WebhookDelivery.objects.get().event_id == ""
