"""Every change of an order's status leaves an audit row: who or what acted, from and to
which status, why; the admin shows the trail newest first, read-only."""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse

from core.errors import PermissionDenied
from orders.errors import OrderError
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_advance, order_create, order_reject, order_verify, proof_submit
from payments.models import AuditSource, PaymentAudit
from payments.services import payment_confirm
from payments.services.confirmation import Evidence
from tests.factories import ProductFactory, TableFactory, UserFactory
from tests.orders.conftest import make_order, png_bytes, upload
from tests.payments.conftest import staff_client  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

S = OrderStatus


def trail(order):
    return [
        (e.action, e.from_status, e.to_status, e.source, e.actor, e.reason)
        for e in OrderEvent.objects.filter(order=order).order_by("id")
    ]


def submit(order, user):
    return proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=user
    )


def test_every_step_from_order_to_paid_is_audited(staff_users, private_media):
    waiter, kitchen, cashier = staff_users["waiter"], staff_users["kitchen"], staff_users["cashier"]
    table = TableFactory(name="Mesa 9")
    tacos = ProductFactory(name="Tacos", price="95.00")
    order = order_create(actor=waiter, table_id=table.pk, items=[(tacos.pk, 2)])
    order_advance(order_id=order.pk, to=S.PREPARING, actor=kitchen)
    order_advance(order_id=order.pk, to=S.READY, actor=kitchen)
    order_advance(order_id=order.pk, to=S.DELIVERED, actor=waiter)
    first = submit(order, waiter)
    why = "Blurry receipt"
    order_reject(order_id=order.pk, cashier=cashier, reason=f"  {why} ")
    second = submit(order, waiter)
    order_verify(order_id=order.pk, cashier=cashier)

    assert trail(order) == [
        ("created", "", S.PENDING, AuditSource.WAITER, waiter, ""),
        ("preparing", S.PENDING, S.PREPARING, AuditSource.KITCHEN, kitchen, ""),
        ("ready", S.PREPARING, S.READY, AuditSource.KITCHEN, kitchen, ""),
        ("delivered", S.READY, S.DELIVERED, AuditSource.WAITER, waiter, ""),
        ("proof_submitted", S.DELIVERED, S.AWAITING_VERIFICATION, AuditSource.WAITER, waiter, ""),
        ("proof_rejected", S.AWAITING_VERIFICATION, S.DELIVERED, AuditSource.CASHIER, cashier, why),
        ("proof_resubmitted", S.DELIVERED, S.AWAITING_VERIFICATION, AuditSource.WAITER, waiter, ""),
        ("paid", S.AWAITING_VERIFICATION, S.PAID, AuditSource.CASHIER, cashier, ""),
    ]  # fmt: skip
    events = list(OrderEvent.objects.filter(order=order).order_by("id"))
    assert events[4].data == {
        "proof": first.pk,
        "attempt": 1,
        "method": "transfer",
        "payment": first.payment_session.reference,
    }
    assert events[5].data == {
        "proof": first.pk,
        "attempt": 1,
        "payment": first.payment_session.reference,
    }
    assert events[6].data["attempt"] == 2
    assert events[7].data == {
        "proof": second.pk,
        "attempt": 2,
        "payment": second.payment_session.reference,
    }


def test_staff_confirming_the_proofs_payment_is_who_made_the_order_paid(staff_users, private_media):
    order = make_order(staff_users["waiter"])
    proof = submit(order, staff_users["staff"])  # staff upload for the waiter
    session = proof.payment_session
    payment_confirm(
        reference=session.reference,
        amount=session.amount,
        currency=session.currency,
        evidence=Evidence(source=AuditSource.STAFF, actor=staff_users["staff"], reason="seen"),
    )
    assert [(e.action, e.source, e.actor, e.reason) for e in order.events.order_by("id")] == [
        ("proof_submitted", AuditSource.STAFF, staff_users["staff"], ""),
        ("paid", AuditSource.STAFF, staff_users["staff"], "seen"),
    ]


def test_a_cancelled_order_names_the_cashier(staff_users):
    order = make_order(staff_users["waiter"], status=S.READY)
    order_advance(order_id=order.pk, to=S.CANCELLED, actor=staff_users["cashier"])
    assert trail(order) == [
        ("cancelled", S.READY, S.CANCELLED, AuditSource.CASHIER, staff_users["cashier"], "")
    ]


def test_refused_steps_leave_no_row(staff_users):
    order = make_order(staff_users["waiter"], status=S.PENDING)
    with pytest.raises(OrderError):
        order_advance(order_id=order.pk, to=S.READY, actor=staff_users["kitchen"])
    with pytest.raises(PermissionDenied):
        order_advance(order_id=order.pk, to=S.PREPARING, actor=staff_users["waiter"])
    assert not OrderEvent.objects.exists()


def test_a_rolled_back_step_leaves_no_row(staff_users):
    order = make_order(staff_users["waiter"], status=S.PENDING)
    with pytest.raises(RuntimeError), transaction.atomic():
        order_advance(order_id=order.pk, to=S.PREPARING, actor=staff_users["kitchen"])
        assert OrderEvent.objects.filter(order=order).count() == 1
        raise RuntimeError("the request failed afterwards")
    assert not OrderEvent.objects.exists()


def test_the_admin_shows_the_trail_newest_first_and_read_only(
    staff_client,  # noqa: F811
    staff_users,
):
    order = make_order(staff_users["waiter"], status=S.PENDING)
    order_advance(order_id=order.pk, to=S.PREPARING, actor=staff_users["kitchen"])
    order_advance(order_id=order.pk, to=S.READY, actor=staff_users["kitchen"])
    newest_first = list(order.events.order_by("-created_at", "-id"))

    listed = staff_client.get("/admin/orders/orderevent/").context["cl"].result_list
    assert list(listed) == newest_first
    filtered = staff_client.get("/admin/orders/orderevent/", {"source": "kitchen"})
    assert list(filtered.context["cl"].result_list) == newest_first

    page = staff_client.get(f"/admin/orders/order/{order.pk}/change/")
    inline = next(f for f in page.context["inline_admin_formsets"] if f.formset.model is OrderEvent)
    assert [form.instance for form in inline.formset.forms] == newest_first
    assert not inline.has_add_permission
    assert staff_client.get("/admin/orders/orderevent/add/").status_code == 403
    detail = staff_client.get(f"/admin/orders/orderevent/{newest_first[0].pk}/change/")
    assert detail.status_code == 200 and b'name="action"' not in detail.content


def test_the_staff_group_may_read_the_trail_and_not_change_it():
    codenames = set(Group.objects.get(name="staff").permissions.values_list("codename", flat=True))
    assert "view_orderevent" in codenames
    assert not {"add_orderevent", "change_orderevent", "delete_orderevent"} & codenames


def test_payment_audit_rows_are_untouched_by_the_order_trail(staff_users, private_media):
    order = make_order(staff_users["waiter"])
    proof = submit(order, staff_users["waiter"])
    order_verify(order_id=order.pk, cashier=staff_users["cashier"])
    completed = PaymentAudit.objects.get(session=proof.payment_session, action="completed")
    assert (completed.source, completed.actor) == (AuditSource.CASHIER, staff_users["cashier"])


def test_an_order_entered_in_the_admin_starts_its_trail(client, staff_users):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    table = TableFactory(name="Mesa 3")
    tacos = ProductFactory(name="Tacos", price="95.00")
    add_page = client.get(reverse("admin:orders_order_add"))
    assert OrderEvent not in {f.formset.model for f in add_page.context["inline_admin_formsets"]}
    answer = client.post(
        reverse("admin:orders_order_add"),
        {
            "table": table.pk,
            "waiter": staff_users["waiter"].pk,
            "payment_method": "",
            "currency": "MXN",
            "notes": "",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-product": tacos.pk,
            "lines-0-quantity": "1",
            "lines-0-unit_price": "95.00",
            "proofs-TOTAL_FORMS": "0",
            "proofs-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302
    [order] = Order.objects.all()
    assert trail(order) == [("created", "", S.PENDING, AuditSource.STAFF, admin_user, "")]
