import io
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders.models import Order, OrderLine, OrderStatus, Product, Table
from tests.factories import UserFactory


def png_bytes(size=(64, 48), exif: bool = False, fmt="PNG") -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    if exif:
        data = image.getexif()
        data[0x010F] = "SecretCam"  # Make
        data[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS
        image.save(buffer, fmt, exif=data)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def upload(content: bytes, name="comprobante.png", content_type="image/png"):
    return SimpleUploadedFile(name, content, content_type)


@pytest.fixture
def private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture
def staff_users(db):
    return {
        "waiter": UserFactory(roles=["waiter"]),
        "other_waiter": UserFactory(roles=["waiter"]),
        "cashier": UserFactory(roles=["cashier"]),
        "kitchen": UserFactory(roles=["kitchen"]),
        "staff": UserFactory(roles=["staff"]),
    }


def make_order(waiter, status=OrderStatus.DELIVERED) -> Order:
    table = Table.objects.create(name=f"Mesa {Table.objects.count() + 1}")
    order = Order.objects.create(
        table=table, waiter=waiter, status=status, currency=settings.ORDERS_CURRENCY
    )
    tacos = Product.objects.create(name="Tacos", price=Decimal("95.00"))
    agua = Product.objects.create(name="Agua de jamaica", price=Decimal("35.00"))
    OrderLine.objects.create(order=order, product=tacos, quantity=2, unit_price=tacos.price)
    OrderLine.objects.create(order=order, product=agua, quantity=1, unit_price=agua.price)
    return order
