"""Mercado Pago payments that did not start in Confirma: matched by their payment id when
a session holds it, otherwise kept as unmatched money for staff — never dropped — and
attached to a session from the admin (confirming it through the one path)."""

import time
import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from notifications.models import Alert
from payments.models import (
    DeliveryStatus,
    PaymentSession,
    PaymentStatus,
    UnmatchedPayment,
    WebhookDelivery,
)
from payments.services import payment_session_create
from tests.payments.conftest import post_mp

pytestmark = pytest.mark.django_db

ADMIN = "/admin/payments/unmatchedpayment/"


def mp_session(**kwargs):
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider=kwargs.pop("provider", "mercadopago"),
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session


def test_money_without_our_reference_is_kept_for_staff_with_the_payer_masked(client, mp_fake):
    payment = mp_fake.receive_outside("37.50", description="PIX QR balcão")
    answer = post_mp(client, mp_fake.notification(payment["id"]))
    assert answer.json()["status"] == DeliveryStatus.IGNORED
    kept = UnmatchedPayment.objects.get()
    assert f"unmatched money #{kept.pk}" in answer.json()["error"]
    assert (kept.provider, kept.provider_payment_id, kept.amount, kept.currency) == (
        "mercadopago",
        str(payment["id"]),
        Decimal("37.50"),
        "BRL",
    )
    assert (kept.provider_status, kept.external_reference, kept.description) == (
        "approved",
        "",
        "PIX QR balcão",
    )
    assert kept.payer == {
        "name": "Maria S.",
        "email": "m***@example.com",
        "document": "CPF ***.***.***-09",
        "payer_id": "1234567890",
    }
    assert kept.delivery == WebhookDelivery.objects.get() and kept.session is None
    assert Alert.objects.get(code="payment.unmatched").context["unmatched"] == kept.pk

    # The same payment notified again stays one row; its refund at the provider is noted.
    post_mp(client, mp_fake.notification(payment["id"]))
    mp_fake.set_status(payment["id"], "refund")
    post_mp(client, mp_fake.notification(payment["id"]))
    kept.refresh_from_db()
    assert UnmatchedPayment.objects.count() == 1 and kept.provider_status == "refunded"


def test_someone_elses_reference_is_kept_too_and_a_pending_payment_is_not(client, mp_fake):
    theirs = mp_fake.receive_outside("12.00", external_reference="erp-000123")
    post_mp(client, mp_fake.notification(theirs["id"]))
    assert UnmatchedPayment.objects.get().external_reference == "erp-000123"

    waiting = mp_fake.receive_outside("5.00")
    mp_fake.set_status(waiting["id"], "pend")
    post_mp(client, mp_fake.notification(waiting["id"]))
    assert UnmatchedPayment.objects.count() == 1  # no money yet: nothing to keep


@pytest.mark.parametrize("reference", [None, "", "ps_not_ours"])
def test_a_payment_without_a_known_reference_is_matched_by_its_payment_id(
    client, mp_fake, test_purpose, reference
):
    session = mp_session()
    mp_fake.payments[session.provider_payment_id]["external_reference"] = reference
    mp_fake.set_status(session.provider_payment_id, "approve")
    answer = post_mp(client, mp_fake.notification(session.provider_payment_id))
    assert answer.json()["status"] == DeliveryStatus.PROCESSED
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert not UnmatchedPayment.objects.exists()


def _attach(staff_client, row, reference, reason="customer showed the PIX receipt"):
    return staff_client.post(
        ADMIN,
        {
            "action": "attach",
            ACTION_CHECKBOX_NAME: [row.pk],
            "apply": "1",
            "reference": reference,
            "reason": reason,
        },
        follow=True,
    )


def test_staff_attach_unmatched_money_to_a_session_which_is_confirmed(
    staff_client, mp_fake, test_purpose
):
    session = mp_session()
    own_qr = session.provider_payment_id
    payment = mp_fake.receive_outside("10.00")
    post_mp(staff_client, mp_fake.notification(payment["id"]))
    row = UnmatchedPayment.objects.get()

    form = staff_client.post(ADMIN, {"action": "attach", ACTION_CHECKBOX_NAME: [row.pk]})
    assert b"Payment session reference" in form.content and b"Reason" in form.content
    _attach(staff_client, row, session.reference, reason="")
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING  # a reason is required

    _attach(staff_client, row, session.reference)
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and session.fulfilled_at
    assert session.provider_payment_id == str(payment["id"])
    completed = session.audits.get(action="completed")
    assert (completed.source, completed.actor, completed.reason) == (
        "staff",
        staff_client.user,
        "customer showed the PIX receipt",
    )
    assert completed.data["unmatched_payment"] == row.pk
    attached = session.audits.get(action="unmatched_attached")
    assert attached.actor == staff_client.user and attached.delivery == row.delivery
    row.refresh_from_db()
    assert (row.session, row.attached_by) == (session, staff_client.user)
    page = staff_client.get(f"/admin/payments/paymentsession/{session.pk}/change/")
    assert "customer showed the PIX receipt" in page.content.decode()  # the money, inline

    # A later notice of that payment (its refund) finds the session now.
    mp_fake.set_status(payment["id"], "refund")
    post_mp(staff_client, mp_fake.notification(payment["id"]))
    session.refresh_from_db()
    assert session.status == PaymentStatus.REFUNDED
    # The session's own QR code, paid after all, is a second payment: alerted, not lost.
    mp_fake.set_status(own_qr, "approve")
    post_mp(staff_client, mp_fake.notification(own_qr))
    assert Alert.objects.filter(code="payment.duplicate").exists()


def test_attaching_is_refused_clearly_and_changes_nothing(staff_client, mp_fake, test_purpose):
    payment = mp_fake.receive_outside("10.00")
    post_mp(staff_client, mp_fake.notification(payment["id"]))
    row = UnmatchedPayment.objects.get()
    page = _attach(staff_client, row, "ps_nobody").content.decode()
    assert "No payment session with the reference ps_nobody." in page

    paid = mp_session()
    mp_fake.set_status(paid.provider_payment_id, "approve")
    post_mp(staff_client, mp_fake.notification(paid.provider_payment_id))
    page = _attach(staff_client, row, paid.reference).content.decode()
    assert "is already paid: refund this money at the provider instead." in page

    row.refresh_from_db()
    assert row.session is None and row.attached_at is None
    assert not paid.audits.filter(source="staff").exists()


def test_unmatched_money_admin_pages_show_it_masked(staff_client, mp_fake):
    payment = mp_fake.receive_outside("37.50")
    post_mp(staff_client, mp_fake.notification(payment["id"]))
    row = UnmatchedPayment.objects.get()
    listing = staff_client.get(ADMIN).content.decode()
    assert str(payment["id"]) in listing and "m***@example.com" in listing
    detail = staff_client.get(f"{ADMIN}{row.pk}/change/").content.decode()
    assert "CPF ***.***.***-09" in detail
    for page in (listing, detail):
        assert "maria.silva" not in page and "12345678909" not in page
    assert b"Unmatched money" in staff_client.get("/admin/payments/").content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_notified_by_the_fake_to_a_running_server_it_is_kept(live_server, mp_fake, webhook_worker):
    payment = mp_fake.receive_outside(
        "21.00", notification_url=live_server.url + "/webhooks/mercadopago/"
    )
    assert mp_fake.act(payment["id"], "approve")["delivered"] == 200
    deadline = time.monotonic() + 10
    while not UnmatchedPayment.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    kept = UnmatchedPayment.objects.get()
    assert (kept.provider_payment_id, kept.amount) == (str(payment["id"]), Decimal("21.00"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_staff_attaching_the_same_money_at_once_attach_it_once(client, mp_fake, test_purpose):
    import threading

    from django.db import connection

    from payments.errors import PaymentError
    from payments.models import AuditSource
    from payments.services.confirmation import Evidence
    from payments.services.unmatched import unmatched_attach
    from tests.factories import UserFactory

    payment = mp_fake.receive_outside("10.00")
    post_mp(client, mp_fake.notification(payment["id"]))
    row = UnmatchedPayment.objects.get()
    sessions = [mp_session(), mp_session()]
    staff = UserFactory(roles=["staff"])
    barrier, outcomes = threading.Barrier(2), []

    def attach(session):
        try:
            barrier.wait()
            unmatched_attach(
                unmatched_id=row.pk,
                reference=session.reference,
                evidence=Evidence(source=AuditSource.STAFF, actor=staff, reason="receipt"),
            )
            outcomes.append("attached")
        except PaymentError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attach, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 2 and outcomes.count("attached") == 1, outcomes
    completed = [s for s in sessions if PaymentSession.objects.get(pk=s.pk).status == "completed"]
    assert len(completed) == 1
    row.refresh_from_db()
    assert row.session_id == completed[0].pk
