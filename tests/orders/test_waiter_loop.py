"""The loop closed for the waiter: a paid order stays in sight, proofs waiting are counted,
a rejection stands out, and the cashier sees why the last attempt was refused."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from orders.services import order_reject, order_verify, proof_submit
from tests.orders.conftest import make_order, png_bytes, upload

pytestmark = pytest.mark.django_db


def submit(order, waiter):
    return proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )


@pytest.fixture
def waiter_client(client, staff_users):
    client.force_login(staff_users["waiter"])
    return client


def waiter_html(client) -> str:
    return client.get(reverse("waiter")).content.decode()


def test_an_approved_order_shows_as_paid(waiter_client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    submit(order, staff_users["waiter"])
    order_verify(order_id=order.pk, cashier=staff_users["cashier"])
    html = waiter_html(waiter_client)
    assert f'id="paid-{order.pk}"' in html
    paid_line = html.split(f'id="paid-{order.pk}"', 1)[1].split("</p>", 1)[0]
    assert "Paid ✓" in paid_line and "MX$225.00" in paid_line and "bank transfer" in paid_line


def test_paid_orders_of_other_waiters_or_long_ago_are_not_listed(
    waiter_client, staff_users, private_media
):
    old, other = make_order(staff_users["waiter"]), make_order(staff_users["other_waiter"])
    submit(old, staff_users["waiter"])
    submit(other, staff_users["other_waiter"])
    for order in (old, other):
        order_verify(order_id=order.pk, cashier=staff_users["cashier"])
    Order.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=13))
    html = waiter_html(waiter_client)
    assert f'id="paid-{old.pk}"' not in html and f'id="paid-{other.pk}"' not in html


def test_proofs_waiting_for_the_cashier_are_counted(waiter_client, staff_users, private_media):
    waiter = staff_users["waiter"]
    assert 'data-count="0"' in waiter_html(waiter_client)
    first, second = make_order(waiter), make_order(waiter)
    submit(first, waiter)
    submit(second, waiter)
    submit(make_order(staff_users["other_waiter"]), staff_users["other_waiter"])
    html = waiter_html(waiter_client)
    assert 'data-count="2"' in html and "2 proofs waiting for the cashier" in html
    order_verify(order_id=first.pk, cashier=staff_users["cashier"])
    html = waiter_html(waiter_client)
    assert 'data-count="1"' in html and "1 proof waiting for the cashier" in html


def test_a_rejection_is_a_warning_with_its_reason(waiter_client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    submit(order, staff_users["waiter"])
    order_reject(order_id=order.pk, cashier=staff_users["cashier"], reason="Monto ilegible")
    html = waiter_html(waiter_client)
    start = html.index(f'id="rejected-{order.pk}"')
    tag = html[html.rindex("<", 0, start) : html.index(">", start)]
    assert 'role="alert"' in tag and "order-warning" in tag
    assert "Proof rejected: Monto ilegible" in html[start:].split("</div>", 1)[0]
    assert ".order-warning" in html  # its style travels with the page


def test_the_cashier_sees_the_earlier_rejection_on_a_resubmission(
    client, staff_users, private_media
):
    waiter, cashier = staff_users["waiter"], staff_users["cashier"]
    order, fresh = make_order(waiter), make_order(waiter)
    submit(order, waiter)
    submit(fresh, waiter)
    order_reject(order_id=order.pk, cashier=cashier, reason="Monto ilegible")
    submit(order, waiter)
    order_reject(order_id=order.pk, cashier=cashier, reason="Falta la referencia")
    submit(order, waiter)
    client.force_login(cashier)
    html = client.get(reverse("cashier")).content.decode()
    block = html.split(f'id="earlier-rejections-{order.pk}"', 1)[1].split("</div>", 1)[0]
    assert "Rejected at attempt 1" in block and "Monto ilegible" in block
    assert "Rejected at attempt 2" in block and "Falta la referencia" in block
    assert block.index("Monto ilegible") < block.index("Falta la referencia")
    assert f'id="earlier-rejections-{fresh.pk}"' not in html
