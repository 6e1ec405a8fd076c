import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from orders.models import Order, OrderStatus, Table
from tests.factories import (
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    TableFactory,
    UserFactory,
)


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


def pdf_writer(pages: int = 1, text: str = "Pago 130.00 MXN") -> PdfWriter:
    """A PDF as a bank app would export it: pages with a line of Helvetica text."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for _ in range(pages):
        page = writer.add_blank_page(300, 200)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET\n".encode())
        page[NameObject("/Contents")] = writer._add_object(content)
    return writer


def pdf_bytes(writer: PdfWriter | None = None) -> bytes:
    buffer = io.BytesIO()
    (writer or pdf_writer()).write(buffer)
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
    table = TableFactory(name=f"Mesa {Table.objects.count() + 1}")
    order = OrderFactory(table=table, waiter=waiter, status=status)
    tacos = ProductFactory(name="Tacos", price=Decimal("95.00"))
    agua = ProductFactory(name="Agua de jamaica", price=Decimal("35.00"))
    OrderLineFactory(order=order, product=tacos, quantity=2)
    OrderLineFactory(order=order, product=agua, quantity=1)
    return order
