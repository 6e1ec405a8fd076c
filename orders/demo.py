"""Demo restaurant: tables, a small menu, and orders in each state."""

import io
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders.models import Order, OrderLine, OrderStatus, Product, Table
from orders.services import order_verify, proof_submit

MENU = [
    ("Tacos al pastor", "95.00"),
    ("Enchiladas verdes", "120.00"),
    ("Agua de jamaica", "35.00"),
    ("Flan napolitano", "55.00"),
]


def _receipt() -> SimpleUploadedFile:
    image = Image.new("RGB", (320, 200), "white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile("comprobante.png", buffer.getvalue(), "image/png")


def orders_demo() -> list[str]:
    User = get_user_model()
    waiter = User.objects.filter(username="waiter").first()
    if waiter is None:
        return []
    cashier = User.objects.filter(username="cashier").first()
    tables = [Table.objects.get_or_create(name=f"Mesa {n}")[0] for n in range(1, 9)]
    products = [
        Product.objects.get_or_create(name=name, defaults={"price": Decimal(price)})[0]
        for name, price in MENU
    ]
    if Order.objects.exists():
        return [
            f"Restaurant: {len(tables)} tables, {len(products)} menu items, "
            f"{Order.objects.count()} orders"
        ]
    states = [
        OrderStatus.PENDING,
        OrderStatus.PREPARING,
        OrderStatus.READY,
        OrderStatus.DELIVERED,
        OrderStatus.DELIVERED,
        OrderStatus.AWAITING_VERIFICATION,
        OrderStatus.PAID,
    ]
    # The last table is left free for the waiter's first new order.
    for table, status in zip(tables, states, strict=False):
        order = Order.objects.create(
            table=table,
            waiter=waiter,
            created_by=waiter,
            currency=settings.ORDERS_CURRENCY,
            status=OrderStatus.DELIVERED
            if status in (OrderStatus.AWAITING_VERIFICATION, OrderStatus.PAID)
            else status,
        )
        for product in products[: 2 + table.pk % 2]:
            OrderLine.objects.create(
                order=order, product=product, quantity=1 + table.pk % 3, unit_price=product.price
            )
        if status in (OrderStatus.AWAITING_VERIFICATION, OrderStatus.PAID):
            proof_submit(order_id=order.pk, upload=_receipt(), method="transfer", actor=waiter)
        if status == OrderStatus.PAID and cashier is not None:
            order_verify(order_id=order.pk, cashier=cashier)
    return [
        f"Restaurant: {len(tables)} tables, {len(products)} menu items, 7 orders "
        "(pending, preparing, ready, delivered ×2, awaiting verification, paid); "
        "the waiter takes new ones under My tables → New order"
    ]
