"""Waiters take orders: the service's rules, its events after commit, and the phone page."""

import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from core.errors import PermissionDenied
from notifications.models import Event
from orders.errors import OrderError
from orders.models import Order, OrderLine, OrderStatus, Product, Table
from orders.services import order_create
from tests.factories import ProductFactory, TableFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def menu(db):
    return {
        "table": TableFactory(name="Mesa 9"),
        "closed_table": TableFactory(name="Terraza", active=False),
        "tacos": ProductFactory(name="Tacos", price=Decimal("95.00")),
        "agua": ProductFactory(name="Agua de jamaica", price=Decimal("35.00")),
        "gone": ProductFactory(name="Pozole", price=Decimal("80.00"), active=False),
    }


def test_waiter_takes_an_order_and_the_kitchen_hears_after_commit(
    staff_users, menu, django_capture_on_commit_callbacks
):
    waiter = staff_users["waiter"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = order_create(
            actor=waiter,
            table_id=menu["table"].pk,
            items=[(menu["tacos"].pk, 2), (menu["agua"].pk, 1), (menu["gone"].pk, 0)],
            amount="12.50",
            notes="  sin cebolla  ",
        )
        assert callbacks == []  # nothing has left the database before the commit
    assert len(callbacks) == 1
    order.refresh_from_db()
    assert (order.status, order.waiter, order.created_by) == (OrderStatus.PENDING, waiter, waiter)
    assert (order.table, order.notes, order.currency) == (menu["table"], "sin cebolla", "MXN")
    lines = {(line.product_id, line.quantity, line.unit_price) for line in order.lines.all()}
    assert lines == {
        (menu["tacos"].pk, 2, Decimal("95.00")),
        (menu["agua"].pk, 1, Decimal("35.00")),
        (None, 1, Decimal("12.50")),
    }
    assert order.total == Decimal("237.50")
    events = Event.objects.filter(type="order.updated")
    assert set(events.values_list("audience", flat=True)) == {
        "role:kitchen",
        "role:cashier",
        "role:waiter",
    }
    payload = events.first().payload
    assert {k: payload[k] for k in ("order", "status", "table", "total", "action", "waiter")} == {
        "order": order.pk,
        "status": "pending",
        "table": "Mesa 9",
        "total": "237.50",
        "action": "created",
        "waiter": waiter.pk,
    }


def test_an_amount_alone_is_an_order(staff_users, menu):
    order = order_create(actor=staff_users["waiter"], table_id=menu["table"].pk, amount="40")
    assert order.total == Decimal("40.00")
    assert order.lines.get().product is None


def test_staff_may_take_orders_the_kitchen_and_cashier_may_not(staff_users, menu):
    order = order_create(
        actor=staff_users["staff"], table_id=menu["table"].pk, items=[(menu["tacos"].pk, 1)]
    )
    assert order.created_by == staff_users["staff"]
    for who in ("kitchen", "cashier"):
        with pytest.raises(PermissionDenied):
            order_create(
                actor=staff_users[who], table_id=menu["table"].pk, items=[(menu["tacos"].pk, 1)]
            )
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"table_id": None}, "table_missing", "table"),
        ({"table_id": "closed_table"}, "table_missing", "table"),
        ({"items": []}, "order_empty", None),
        ({"items": [("tacos", 0)]}, "order_empty", None),
        ({"items": [("tacos", -1)]}, "invalid_quantity", "items"),
        ({"items": [("tacos", 51)]}, "invalid_quantity", "items"),
        ({"items": [("tacos", "2")]}, "invalid_quantity", "items"),
        ({"items": [("gone", 1)]}, "product_unavailable", "items"),
        ({"items": [("tacos", 1), (999999, 1)]}, "product_unavailable", "items"),
        ({"amount": "0"}, "invalid_amount", "amount"),
        ({"amount": "-5"}, "invalid_amount", "amount"),
        ({"amount": "1.005"}, "invalid_amount", "amount"),
        ({"amount": "NaN"}, "invalid_amount", "amount"),
        ({"amount": "abc"}, "invalid_amount", "amount"),
        ({"amount": "100000.01"}, "invalid_amount", "amount"),
        ({"notes": "x" * 501}, "notes_too_long", "notes"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(staff_users, menu, change, code, field):
    args = {"table_id": menu["table"].pk, "items": [(menu["tacos"].pk, 1)], "notes": ""}
    for key, value in change.items():
        if key == "table_id" and isinstance(value, str):
            value = menu[value].pk
        if key == "items":
            value = [(menu[p].pk if isinstance(p, str) else p, q) for p, q in value]
        args[key] = value
    if "items" in change and "amount" not in change:
        args["amount"] = None
    with pytest.raises(OrderError) as refused:
        order_create(actor=staff_users["waiter"], **args)
    assert refused.value.code == code
    assert refused.value.details.get("field") == field
    assert refused.value.message  # a sentence for the waiter
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert not Event.objects.exists()


def test_the_same_form_sent_twice_makes_one_order(staff_users, menu):
    key = uuid.uuid4()
    args = {"table_id": menu["table"].pk, "items": [(menu["tacos"].pk, 1)], "form_key": key}
    first = order_create(actor=staff_users["waiter"], **args)
    again = order_create(actor=staff_users["waiter"], **args)
    assert again.pk == first.pk
    assert Order.objects.count() == 1
    with pytest.raises(OrderError) as refused:
        order_create(actor=staff_users["other_waiter"], **args)
    assert refused.value.code == "form_reused"
    assert Order.objects.count() == 1


def test_a_rolled_back_order_publishes_nothing(
    staff_users, menu, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        order_create(
            actor=staff_users["waiter"], table_id=menu["table"].pk, items=[(menu["tacos"].pk, 1)]
        )
        raise RuntimeError("the rest of the request failed")
    assert callbacks == []
    assert not Order.objects.exists() and not Event.objects.exists()


# --- The page ------------------------------------------------------------------------------------


def test_the_page_offers_active_tables_and_menu_only(client, staff_users, menu):
    client.force_login(staff_users["waiter"])
    page = client.get(reverse("waiter-new-order"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Mesa 9" in html and "Tacos" in html
    assert "Terraza" not in html and "Pozole" not in html
    assert page.context["form"]["form_key"].value()


def test_the_page_creates_the_order_and_goes_back_to_my_tables(client, staff_users, menu):
    client.force_login(staff_users["waiter"])
    answer = client.post(
        reverse("waiter-new-order"),
        {
            "table": menu["table"].pk,
            f"qty_{menu['tacos'].pk}": "3",
            f"qty_{menu['agua'].pk}": "",
            "amount": "10,50",  # a decimal comma, as Spanish phones type it
            "notes": "para llevar",
            "form_key": str(uuid.uuid4()),
        },
        follow=True,
    )
    assert answer.redirect_chain == [(reverse("waiter"), 302)]
    order = Order.objects.get()
    assert (order.total, order.notes, order.created_by) == (
        Decimal("295.50"),
        "para llevar",
        staff_users["waiter"],
    )
    assert f"Order #{order.pk} for Mesa 9 sent to the kitchen." in answer.content.decode()
    # The new order shows on the waiter's page while the kitchen has it.
    assert f'class="in-kitchen" data-order="{order.pk}"' in answer.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Add at least one item or an amount."),
        ({"table": ""}, "Choose a table."),
        ({"amount": "0"}, "Ensure this value is greater than or equal to 0.01."),
        ({"amount": "12.345"}, "Ensure that there are no more than 2 decimal places."),
        ({"qty": "-2"}, "Ensure this value is greater than or equal to 0."),
        ({"qty": "dos"}, "Enter a whole number."),
        ({"notes": "x" * 501}, "Ensure this value has at most 500 characters"),
    ],
)
def test_the_page_explains_bad_input_and_stores_nothing(client, staff_users, menu, data, message):
    client.force_login(staff_users["waiter"])
    body = {"table": menu["table"].pk, "form_key": str(uuid.uuid4())}
    for key, value in data.items():
        body[f"qty_{menu['tacos'].pk}" if key == "qty" else key] = value
    answer = client.post(reverse("waiter-new-order"), body)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert 'role="alert"' in answer.content.decode()
    assert not Order.objects.exists()


def test_an_item_taken_off_the_menu_meanwhile_is_not_dropped_silently(client, staff_users, menu):
    """The waiter's page still showed the drink; the order is refused, never sent without it."""
    client.force_login(staff_users["waiter"])
    page = client.get(reverse("waiter-new-order"))
    Product.objects.filter(pk=menu["agua"].pk).update(active=False)
    answer = client.post(
        reverse("waiter-new-order"),
        {
            "table": menu["table"].pk,
            f"qty_{menu['tacos'].pk}": "1",
            f"qty_{menu['agua'].pk}": "2",
            "form_key": page.context["form"]["form_key"].value(),
        },
    )
    assert answer.status_code == 400
    assert "An item is no longer on the menu; check the order again." in answer.content.decode()
    assert not Order.objects.exists()


def test_a_table_closed_meanwhile_is_refused(client, staff_users, menu):
    client.force_login(staff_users["waiter"])
    page = client.get(reverse("waiter-new-order"))
    Table.objects.filter(pk=menu["table"].pk).update(active=False)
    answer = client.post(
        reverse("waiter-new-order"),
        {
            "table": menu["table"].pk,
            f"qty_{menu['tacos'].pk}": "1",
            "form_key": page.context["form"]["form_key"].value(),
        },
    )
    assert answer.status_code == 400
    assert "Select a valid choice" in answer.content.decode()
    assert not Order.objects.exists()


def test_kitchen_and_cashier_cannot_open_the_page(client, staff_users, menu):
    for who in ("kitchen", "cashier"):
        client.force_login(staff_users[who])
        assert client.get(reverse("waiter-new-order")).status_code == 403
        assert (
            client.post(
                reverse("waiter-new-order"),
                {"table": menu["table"].pk, f"qty_{menu['tacos'].pk}": "1"},
            ).status_code
            == 403
        )
    assert not Order.objects.exists()


def test_the_kitchen_board_shows_notes_and_typed_amounts(client, staff_users, menu):
    order_create(
        actor=staff_users["waiter"],
        table_id=menu["table"].pk,
        items=[(menu["tacos"].pk, 2)],
        amount="20",
        notes="sin cebolla",
    )
    client.force_login(staff_users["kitchen"])
    html = client.get(reverse("kitchen")).content.decode()
    assert "2 × Tacos" in html
    assert "Amount: 20.00" in html
    assert "sin cebolla" in html


def test_an_order_added_in_the_admin_records_who_entered_it(client, staff_users, menu):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    answer = client.post(
        reverse("admin:orders_order_add"),
        {
            "table": menu["table"].pk,
            "waiter": staff_users["waiter"].pk,
            "payment_method": "",
            "currency": "MXN",
            "notes": "",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-product": menu["tacos"].pk,
            "lines-0-quantity": "1",
            "lines-0-unit_price": "95.00",
            "proofs-TOTAL_FORMS": "0",
            "proofs-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.context["errors"] if answer.context else answer
    order = Order.objects.get()
    assert (order.waiter, order.created_by) == (staff_users["waiter"], admin)
