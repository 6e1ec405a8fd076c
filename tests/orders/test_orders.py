"""Payment proofs: upload, verify, reject, resubmit — events after commit, rules enforced."""

from decimal import Decimal

import pytest
from django.db import transaction

from notifications.models import Event
from orders.models import Order, OrderStatus, PaymentProof, ProofStatus
from orders.services import order_advance, order_reject, order_verify, proof_submit
from payments.models import PaymentSession, PaymentStatus
from tests.orders.conftest import make_order, pdf_bytes, png_bytes, upload

pytestmark = pytest.mark.django_db


def submit(order, user, content=None, **kwargs):
    return proof_submit(
        order_id=order.pk,
        upload=upload(content or png_bytes(), **kwargs),
        method="transfer",
        actor=user,
    )


def test_total_comes_from_the_lines(staff_users):
    assert make_order(staff_users["waiter"]).total == Decimal("225.00")


def test_rolled_back_proof_publishes_nothing(
    staff_users, private_media, django_capture_on_commit_callbacks
):
    order = make_order(staff_users["waiter"])
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        submit(order, staff_users["waiter"])
        raise RuntimeError("the rest of the request failed")
    assert callbacks == []
    assert not PaymentProof.objects.exists() and not Event.objects.exists()


def test_committed_proof_publishes_the_two_events_after_commit(
    staff_users, private_media, django_capture_on_commit_callbacks
):
    order = make_order(staff_users["waiter"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        proof = submit(order, staff_users["waiter"])
    assert len(callbacks) == 2  # one push per publish, both waiting for the commit
    types = sorted(set(Event.objects.values_list("type", flat=True)))
    assert types == ["order.updated", "payment.verification_pending"]
    assert set(Event.objects.filter(type="order.updated").values_list("audience", flat=True)) == {
        "role:cashier",
        "role:waiter",
        "role:kitchen",
    }
    pending = Event.objects.get(type="payment.verification_pending")
    assert pending.audience == "role:cashier"
    assert pending.payload == {
        "order": order.pk,
        "table": order.table.name,
        "method": "transfer",
        "total": "225.00",
        "currency": "MXN",
        "action": "submitted",
        "attempt": 1,
        "proof": proof.pk,
    }
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_VERIFICATION
    session = proof.payment_session
    assert (session.purpose, session.provider, session.status) == (
        "order",
        "manual_proof",
        PaymentStatus.PROCESSING,
    )
    assert session.amount == Decimal("225.00")


def test_verify_confirms_through_the_payments_core(staff_users, private_media):
    order = make_order(staff_users["waiter"])
    proof = submit(order, staff_users["waiter"])
    order_verify(order_id=order.pk, cashier=staff_users["cashier"])
    order.refresh_from_db()
    proof.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert proof.status == ProofStatus.APPROVED and proof.reviewed_by == staff_users["cashier"]
    audit = proof.payment_session.audits.get(action="completed")
    assert (audit.source, audit.actor) == ("cashier", staff_users["cashier"])
    assert proof.payment_session.fulfilled_at is not None


def test_reject_then_resubmit_is_announced_as_resubmitted(staff_users, private_media):
    waiter = staff_users["waiter"]
    order = make_order(waiter)
    first = submit(order, waiter)
    order_reject(order_id=order.pk, cashier=staff_users["cashier"], reason="Monto ilegible")
    order.refresh_from_db()
    assert (order.status, order.payment_method, order.rejections) == (
        OrderStatus.DELIVERED,
        "transfer",
        1,
    )
    first.refresh_from_db()
    assert (first.status, first.reason) == (ProofStatus.REJECTED, "Monto ilegible")
    assert first.payment_session.status == PaymentStatus.FAILED
    rejected = Event.objects.get(type="payment.rejected")
    assert rejected.audience == f"user:{waiter.pk}"
    assert rejected.payload["reason"] == "Monto ilegible"

    second = submit(order, waiter)
    assert second.attempt == 2 and second.payment_session != first.payment_session
    pending = Event.objects.filter(type="payment.verification_pending").order_by("id").last()
    assert (pending.payload["action"], pending.payload["attempt"]) == ("resubmitted", 2)


def test_reject_needs_a_reason(staff_users, private_media):
    from orders.errors import OrderError

    order = make_order(staff_users["waiter"])
    submit(order, staff_users["waiter"])
    with pytest.raises(OrderError):
        order_reject(order_id=order.pk, cashier=staff_users["cashier"], reason="  ")
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_VERIFICATION


def test_proof_only_for_delivered_orders(staff_users, private_media):
    from orders.errors import OrderError

    order = make_order(staff_users["waiter"], status=OrderStatus.PREPARING)
    with pytest.raises(OrderError):
        submit(order, staff_users["waiter"])
    assert not PaymentProof.objects.exists() and not PaymentSession.objects.exists()
    assert not any(private_media.rglob("*.*"))


def test_kitchen_and_waiter_steps(staff_users):
    from core.errors import PermissionDenied

    order = make_order(staff_users["waiter"], status=OrderStatus.PENDING)
    with pytest.raises(PermissionDenied):
        order_advance(order_id=order.pk, to="preparing", actor=staff_users["waiter"])
    order_advance(order_id=order.pk, to="preparing", actor=staff_users["kitchen"])
    order_advance(order_id=order.pk, to="ready", actor=staff_users["kitchen"])
    with pytest.raises(PermissionDenied):
        order_advance(order_id=order.pk, to="delivered", actor=staff_users["other_waiter"])
    order_advance(order_id=order.pk, to="delivered", actor=staff_users["waiter"])
    assert Order.objects.get().status == OrderStatus.DELIVERED


# --- Permissions through the API ---


def api_upload(client, order, content=None, name="comprobante.png", method="transfer"):
    """A multipart POST built by hand: the test client would strip a path from the name."""
    boundary = "confirmaboundary7MA4YWxk"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\n{method}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + (content or png_bytes()) + f"\r\n--{boundary}--\r\n".encode()
    return client.post(
        f"/api/orders/{order.pk}/proof/",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_permissions(client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["cashier"])
    assert api_upload(client, order).status_code == 403  # not their order, not staff
    client.force_login(staff_users["staff"])
    assert api_upload(client, order).status_code == 201  # staff may
    proof = PaymentProof.objects.get()
    client.force_login(staff_users["waiter"])
    assert client.post(f"/api/orders/{order.pk}/verify/").status_code == 403
    file_url = f"/orders/proofs/{proof.pk}/file/"
    assert client.get(file_url).status_code == 200  # the order's own waiter
    client.force_login(staff_users["other_waiter"])
    assert client.get(file_url).status_code == 404
    client.force_login(staff_users["kitchen"])
    assert client.get(file_url).status_code == 404
    assert client.get("/cashier/").status_code == 403
    client.logout()
    assert client.get(file_url).status_code == 302
    client.force_login(staff_users["cashier"])
    response = client.get(file_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert client.post(f"/api/orders/{order.pk}/verify/").status_code == 200


# --- Upload attacks ---

PHP = b"<?php system($_GET['c']); ?>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(document.cookie)</script></svg>"
)


@pytest.mark.parametrize(
    "content, name, code",
    [
        (PHP, "comprobante.jpg", "file_type"),
        (SVG, "comprobante.svg", "file_type"),
        (SVG, "comprobante.png", "file_type"),
        (png_bytes()[:-40], "comprobante.png", "file_invalid"),  # truncated
        (png_bytes(fmt="JPEG")[:200], "comprobante.jpg", "file_invalid"),
        (b"%PDF-1.7\n1 0 obj<<>>endobj\n", "recibo.pdf", "file_invalid"),  # no %%EOF
        (png_bytes(), "../../../etc/cron.d/x.png", "parse_error"),
        (PHP, "..\\..\\shell.php", "parse_error"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    client, staff_users, private_media, content, name, code
):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=content, name=name)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not PaymentProof.objects.exists() and not PaymentSession.objects.exists()
    assert not any(private_media.rglob("*.*"))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_oversized_image_is_refused(client, staff_users, private_media, settings):
    settings.PROOF_MAX_BYTES = 2000
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    big = png_bytes(size=(800, 800))
    assert len(big) > 2000
    response = api_upload(client, order, content=big)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert not any(private_media.rglob("*.*"))


def test_image_metadata_is_stripped_and_the_name_is_random(client, staff_users, private_media):
    from PIL import Image

    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    content = png_bytes(fmt="JPEG", exif=True)
    assert b"SecretCam" in content
    assert api_upload(client, order, content=content, name="IMG_0042.jpg").status_code == 201
    proof = PaymentProof.objects.get()
    assert "IMG_0042" not in proof.file.name and proof.file.name.endswith(".jpg")
    stored = (private_media / proof.file.name).read_bytes()
    assert b"SecretCam" not in stored
    assert not Image.open(private_media / proof.file.name).getexif()


def test_pdf_proofs_are_accepted(client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=pdf_bytes(), name="recibo.pdf").status_code == 201
    assert PaymentProof.objects.get().content_type == "application/pdf"


def test_pages_render_for_their_roles(client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    submit(order, staff_users["waiter"])
    for role, url in [("cashier", "/cashier/"), ("waiter", "/waiter/"), ("kitchen", "/kitchen/")]:
        client.force_login(staff_users[role])
        assert client.get(url).status_code == 200, url
    client.force_login(staff_users["cashier"])
    page = client.get("/cashier/").content.decode()
    assert f'data-order="{order.pk}"' in page and 'id="badge-cashier">1<' in page


def test_order_statuses_read_in_spanish():
    from django.utils import translation

    with translation.override("es"):
        labels = [
            str(OrderStatus(s).label)
            for s in ("pending", "preparing", "ready", "delivered", "awaiting_verification", "paid")
        ]
    assert labels == [
        "pendiente",
        "en preparación",
        "listo",
        "entregado",
        "por verificar",
        "pagado",
    ]


def test_order_sessions_cannot_be_opened_through_the_public_api(client, staff_users):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = client.post(
        "/api/payment-sessions/",
        data={"purpose": "order", "provider": "manual_proof", "params": {"order": order.pk}},
        content_type="application/json",
        headers={"Idempotency-Key": "sneaky"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_purpose"
    assert not PaymentSession.objects.exists()


def test_giant_image_is_refused_without_decoding_it(client, staff_users, private_media):
    import io

    from PIL import Image

    big = io.BytesIO()
    Image.new("1", (8000, 6000)).save(big, "PNG")  # 48 Mpx, a few kB on disk
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=big.getvalue())
    assert response.status_code == 400
    assert not PaymentProof.objects.exists()
