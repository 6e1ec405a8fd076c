"""A form sent twice at once (a double tap on a slow network) still makes one order."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from notifications.models import Event
from orders.models import Order
from orders.services import order_create
from tests.factories import ProductFactory, TableFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_form_at_once_makes_one_order():
    waiter = UserFactory(roles=["waiter"])
    table = TableFactory(name="Mesa 1")
    tacos = ProductFactory(name="Tacos", price=Decimal("95.00"))
    key, count = uuid.uuid4(), 4
    results, errors, barrier = [None] * count, [], threading.Barrier(count)

    def worker(index):
        barrier.wait()
        try:
            results[index] = order_create(
                actor=waiter, table_id=table.pk, items=[(tacos.pk, 1)], form_key=key
            ).pk
        except Exception as exc:  # any failure is the finding
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    order = Order.objects.get()
    assert results == [order.pk] * count
    assert order.lines.count() == 1
    assert Event.objects.filter(type="order.updated", audience="role:kitchen").count() == 1
