"""Staff fix things from the admin, through the same services, audited."""

import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from payments.models import DeliveryStatus, LedgerEntry, PaymentStatus, WebhookDelivery
from payments.services import payment_session_create, wallet_account_get
from payments.tasks import webhook_delivery_retry
from tests.factories import UserFactory
from tests.payments.conftest import post_mp

pytestmark = pytest.mark.django_db


def kiosk_session():
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session


def test_manual_confirmation_asks_for_a_reason_and_audits_it(staff_client, test_purpose):
    session = kiosk_session()
    url = "/admin/payments/paymentsession/"
    data = {"action": "confirm_manually", ACTION_CHECKBOX_NAME: [session.pk]}
    page = staff_client.post(url, data)
    assert page.status_code == 200 and b"Reason" in page.content
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING  # nothing yet

    staff_client.post(url, {**data, "apply": "1", "reason": ""})
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING  # a reason is required

    staff_client.post(url, {**data, "apply": "1", "reason": "receipt checked by phone"})
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    audit = session.audits.get(action="completed")
    assert (audit.source, audit.actor, audit.reason) == (
        "staff",
        staff_client.user,
        "receipt checked by phone",
    )


def test_admin_pages_render(staff_client, test_purpose, mp_fake):
    session = kiosk_session()
    for url in [
        "/admin/payments/paymentsession/",
        f"/admin/payments/paymentsession/{session.pk}/change/",
        "/admin/payments/webhookdelivery/",
        "/admin/payments/coupon/",
        "/admin/payments/walletaccount/",
        "/admin/payments/paymentaudit/",
        "/admin/payments/webhookdelivery/?q=" + session.reference,
    ]:
        assert staff_client.get(url).status_code == 200, url


def replay_in_admin(staff_client, delivery) -> list[str]:
    """Run the admin's Replay action on `delivery`; the messages it showed."""
    from django.contrib.messages import get_messages

    response = staff_client.post(
        "/admin/payments/webhookdelivery/",
        {"action": "replay", ACTION_CHECKBOX_NAME: [delivery.pk]},
    )
    assert response.status_code == 302
    return [str(message) for message in get_messages(response.wsgi_request)]


def topup():
    return payment_session_create(
        user=UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("9.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session


def test_replay_action_and_retry_task_complete_a_failed_delivery(staff_client, client, mp_fake):
    session = topup()
    mp_fake.set_status(session.provider_payment_id, "approve")
    mp_fake.outage = True
    post_mp(staff_client, mp_fake.notification(session.provider_payment_id))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    page = staff_client.get(f"/admin/payments/webhookdelivery/{delivery.pk}/change/")
    assert session.provider_payment_id.encode() in page.content  # the raw body is shown

    # The retry task, run when it is due, while the provider is still down: still failed,
    # attempt counted. (Run before it is due, it does nothing.)
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "503"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)

    # Replayed from the admin once the provider is back: a new delivery, linked to the
    # original, completes the payment; the original keeps its outcome.
    mp_fake.outage = False
    shown = replay_in_admin(staff_client, delivery)
    replay = WebhookDelivery.objects.get(replay_of=delivery)
    assert shown == [
        f"Delivery {delivery.pk} was replayed as delivery {replay.pk}: processed. "
        "The original keeps its outcome."
    ]
    assert (replay.status, replay.attempts, replay.session) == (
        DeliveryStatus.PROCESSED,
        1,
        session,
    )
    # Who asked for it stays with it, and shows on its page.
    assert replay.requested_by == staff_client.user
    page = staff_client.get(f"/admin/payments/webhookdelivery/{replay.pk}/change/")
    assert staff_client.user.username in admin_field(page.content.decode(), "requested_by")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED

    # Not due yet, the original's retry task does nothing; due, it finds the payment
    # already confirmed (a duplicate: nothing twice); after that, nothing is left to do.
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "200"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DUPLICATE
    assert webhook_delivery_retry.call(delivery_id=delivery.pk) == "skipped"
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert session.audits.filter(action="fulfilled").count() == 1


def test_replaying_a_processed_delivery_keeps_it_and_fulfils_nothing_twice(staff_client, mp_fake):
    session = topup()
    mp_fake.set_status(session.provider_payment_id, "approve")
    post_mp(staff_client, mp_fake.notification(session.provider_payment_id))
    original = WebhookDelivery.objects.get()
    assert original.status == DeliveryStatus.PROCESSED
    before = original.processed_at

    shown = replay_in_admin(staff_client, original)
    replay = WebhookDelivery.objects.get(replay_of=original)
    assert shown == [
        f"Delivery {original.pk} was replayed as delivery {replay.pk}: duplicate. "
        "The original keeps its outcome."
    ]
    assert replay.status == DeliveryStatus.DUPLICATE and replay.session == session
    original.refresh_from_db()
    assert (original.status, original.attempts, original.processed_at) == (
        DeliveryStatus.PROCESSED,
        1,
        before,
    )
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert session.audits.filter(action="fulfilled").count() == 1
    assert wallet_account_get(user=session.user).balance == Decimal("9.00")

    # A replay of the replay is linked to the first delivery too.
    replay_in_admin(staff_client, replay)
    assert WebhookDelivery.objects.filter(replay_of=original).count() == 2
    assert LedgerEntry.objects.filter(session=session).count() == 1


def test_delivery_becomes_dead_after_the_last_attempt(client, mp_fake, settings):
    from notifications.models import Event
    from payments.services.deliveries import deliveries_run

    settings.WEBHOOK_RETRY_MAX_ATTEMPTS = 2
    session = topup()
    mp_fake.outage = True
    post_mp(client, mp_fake.notification(session.provider_payment_id))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliveries_run().as_dict()["dead"] == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.DEAD,
        2,
        None,
    )
    assert Event.objects.filter(type="alert.raised", payload__code="webhook.dead").count() == 1
    # Dead is final: the workers leave it alone, and staff heard about it once.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliveries_run().processed == 0
    assert Event.objects.filter(type="alert.raised", payload__code="webhook.dead").count() == 1


def test_view_only_staff_cannot_run_changing_actions(client, test_purpose):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_paymentsession"))
    client.force_login(viewer)
    session = kiosk_session()
    page = client.get("/admin/payments/paymentsession/")
    assert page.status_code == 200 and b"confirm_manually" not in page.content
    client.post(
        "/admin/payments/paymentsession/",
        {
            "action": "confirm_manually",
            ACTION_CHECKBOX_NAME: [session.pk],
            "apply": "1",
            "reason": "sneaky",
        },
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING


def test_staff_group_member_fixes_sessions_but_cannot_delete_the_audit_trail(client, test_purpose):
    """A staff member who is not a superuser (like the demo's "staff" user) holds only
    the staff group's permissions (config/migrations/0003_staff_permissions.py)."""
    member = UserFactory(roles=["staff"], is_staff=True)
    client.force_login(member)
    session = kiosk_session()
    change_page = f"/admin/payments/paymentsession/{session.pk}/change/"
    assert client.get(change_page).status_code == 200
    client.post(
        "/admin/payments/paymentsession/",
        {
            "action": "confirm_manually",
            ACTION_CHECKBOX_NAME: [session.pk],
            "apply": "1",
            "reason": "receipt checked by phone",
        },
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    audit = session.audits.get(action="completed")
    assert audit.actor == member

    assert client.get(f"/admin/payments/paymentaudit/{audit.pk}/change/").status_code == 200
    for url in (
        f"/admin/payments/paymentaudit/{audit.pk}/delete/",
        f"/admin/payments/paymentsession/{session.pk}/delete/",
    ):
        assert client.post(url, {"post": "yes"}).status_code == 403, url
    assert session.audits.filter(pk=audit.pk).exists()
    assert member.has_perms(["payments.view_paymentaudit", "payments.change_paymentsession"])
    assert not any(
        member.has_perm(f"payments.{perm}")
        for perm in ("delete_paymentaudit", "change_paymentaudit", "delete_paymentsession")
    )
    assert not member.has_perm("auth.change_user")  # users and groups stay with superusers


def admin_field(html: str, name: str) -> str:
    """The text of one read-only field's row on an admin change page."""
    pattern = rf'class="[^"]*field-{name}[^"]*".*?<div class="readonly">(.*?)</div>'
    match = re.search(pattern, html, re.S)
    assert match, f"no field {name} on the page"
    return match.group(1)
