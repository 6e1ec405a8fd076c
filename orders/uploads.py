"""Payment-proof files: decided from their content, never from the name or declared type.

Images (JPEG, PNG, WebP) are verified and fully decoded by Pillow, then re-encoded, which
drops EXIF, GPS and any other metadata. PDFs are parsed by pypdf and only their pages are
copied into a new file: what is drawn on them (content, fonts, images) and nothing else —
no document information or XMP metadata, no JavaScript or other actions, no attachments,
forms, annotations or links, and no bytes that lay outside the PDF's objects. Everything
else is refused. What is stored is always the re-written copy, never the bytes as sent.
"""

import io
import logging
import re
import secrets
import warnings
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader, PdfWriter, apply_configuration
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    StreamObject,
)

from core.errors import ConfirmaError

logger = logging.getLogger(__name__)

IMAGE_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
Image.MAX_IMAGE_PIXELS = 40_000_000  # a decompression bomb is refused, not decoded


class ProofRejected(ConfirmaError):
    code = "invalid_file"


@dataclass(frozen=True)
class CleanFile:
    content: bytes
    content_type: str
    extension: str

    @property
    def random_name(self) -> str:
        return f"{secrets.token_hex(16)}.{self.extension}"


def proof_file_clean(upload) -> CleanFile:
    """Validate an uploaded file and return what may be stored; ProofRejected otherwise."""
    limit = settings.PROOF_MAX_BYTES
    if upload is None:
        raise ProofRejected(_("Attach the photo or PDF of the receipt."), code="file_missing")
    if upload.size > limit:
        raise ProofRejected(
            _("The file is larger than %(mb)s MB.") % {"mb": limit // 1_000_000},
            code="file_too_large",
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ProofRejected(
            _("The file is larger than %(mb)s MB.") % {"mb": limit // 1_000_000},
            code="file_too_large",
        )
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise ProofRejected(_("The PDF is incomplete."), code="file_invalid")
        return _clean_pdf(data)
    return _clean_image(data)


def _clean_image(data: bytes) -> CleanFile:
    refused = ProofRejected(
        _("Only photos (JPEG, PNG, WebP) or PDF files are accepted."), code="file_type"
    )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1× and 2× MAX_IMAGE_PIXELS: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode_and_strip(data, refused)
    except ProofRejected:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise refused from exc
        raise ProofRejected(_("The image is damaged or incomplete."), code="file_invalid") from exc


def _decode_and_strip(data: bytes, refused: ProofRejected) -> CleanFile:
    with Image.open(io.BytesIO(data)) as probe:
        fmt = probe.format
        probe.verify()
    if fmt not in IMAGE_FORMATS:
        raise refused
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        out = io.BytesIO()
        # Saved without exif/icc/text parameters: the metadata is not copied.
        image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    content_type, extension = IMAGE_FORMATS[fmt]
    return CleanFile(out.getvalue(), content_type, extension)


# --- PDF ---------------------------------------------------------------------------------------

# Page entries that describe what is drawn; everything else on a page (annotations, links,
# actions, thumbnails, metadata, structure, private application data) is left behind.
_PDF_PAGE_KEYS = frozenset(
    {
        "/Type",
        "/MediaBox",
        "/CropBox",
        "/BleedBox",
        "/TrimBox",
        "/ArtBox",
        "/Rotate",
        "/UserUnit",
        "/Group",
        "/Resources",
        "/Contents",
    }
)
# Entries that may still hang below what a page draws (form XObjects, images, fonts):
# metadata streams, actions and scripts, attached files, private application data.
_PDF_DROPPED_KEYS = frozenset(
    {
        "/Metadata",
        "/PieceInfo",
        "/LastModified",
        "/AA",
        "/A",
        "/OpenAction",
        "/JS",
        "/JavaScript",
        "/Names",
        "/EmbeddedFiles",
        "/EF",
        "/URI",
        "/Launch",
        "/OPI",
        "/StructParent",
        "/StructParents",
    }
)
# Byte sequences a browser would take for HTML if it were ever made to read the file as a
# page. Streams that hold them are deflated; a re-written file still holding one is refused.
_MARKUP = re.compile(
    rb"(?i)<\s*/?\s*(?:script|html|head|body|iframe|frame|object|embed|meta|link|style|svg|img"
    rb"|base|form|!doctype|\?xml|x:xmpmeta)\b"
)
# Decompression limits for the streams pypdf decodes while re-writing (page contents): far
# above any receipt, far below what would hurt the web worker.
_PDF_DECODED_LIMIT = 25_000_000


def _pdf_unreadable() -> ProofRejected:
    return ProofRejected(
        _("The PDF could not be read. Export it again, or send a photo of the receipt."),
        code="file_invalid",
    )


def _clean_pdf(data: bytes) -> CleanFile:
    """Re-write a PDF with its pages only; ProofRejected if pypdf cannot read it."""
    try:
        with apply_configuration(
            maximum_declared_stream_length=_PDF_DECODED_LIMIT,
            zlib_maximum_output_length=_PDF_DECODED_LIMIT,
            lzw_maximum_output_length=_PDF_DECODED_LIMIT,
            run_length_maximum_output_length=_PDF_DECODED_LIMIT,
            array_based_stream_maximum_output_length=_PDF_DECODED_LIMIT,
            brotli_maximum_output_length=_PDF_DECODED_LIMIT,
        ):
            return CleanFile(_rewrite_pdf(data), "application/pdf", "pdf")
    except ProofRejected:
        raise
    except Exception as exc:
        # pypdf meets hostile input with many exception types (its own, ValueError,
        # KeyError, zlib.error, RecursionError, MemoryError…): any of them means "not a PDF
        # we can re-write", and nothing has been stored yet.
        logger.info("PDF proof refused: %s", exc.__class__.__name__)
        raise _pdf_unreadable() from exc


def _rewrite_pdf(data: bytes) -> bytes:
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ProofRejected(
            _("Password-protected PDFs are not accepted. Send it without a password."),
            code="file_encrypted",
        )
    pages = reader.pages
    limit = settings.PROOF_PDF_MAX_PAGES
    if len(pages) == 0:
        raise _pdf_unreadable()
    if len(pages) > limit:
        raise ProofRejected(
            _("The PDF has more than %(pages)s pages.") % {"pages": limit},
            code="file_too_many_pages",
        )
    writer = PdfWriter()
    seen: set[int] = set()
    for page in pages:
        left_behind = [key for key in page if key not in _PDF_PAGE_KEYS]
        for key in _PDF_PAGE_KEYS & set(page):
            _drop_unwanted_entries(page[key], seen)
        writer.add_page(page, excluded_keys=left_behind)
    for page in writer.pages:
        page.compress_content_streams()
    _hide_markup(writer)
    writer.metadata = None  # no /Info, not even a producer
    writer.compress_identical_objects()  # also drops objects nothing refers to any more
    out = io.BytesIO()
    writer.write(out)
    rewritten = out.getvalue()
    if _MARKUP.search(rewritten):
        raise _pdf_unreadable()
    return rewritten


def _drop_unwanted_entries(root, seen: set[int]) -> None:
    """Remove `_PDF_DROPPED_KEYS` from every dictionary reachable from `root`, in place."""
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # stream objects included
            for key in [key for key in item if key in _PDF_DROPPED_KEYS]:
                del item[key]
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)


def _hide_markup(writer: PdfWriter) -> None:
    """Deflate every stream reachable from the pages whose stored bytes read as markup (a
    form's drawing operators, a JPEG comment…). pypdf writes the `<` and `>` of strings as
    octal escapes and escapes them in names, so streams are all that is left to hide."""
    seen: set[int] = set()
    stack: list = list(writer.pages)
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
            item = item.get_object()
        if isinstance(item, StreamObject) and _MARKUP.search(item._data):
            _add_flate_layer(item)
        if isinstance(item, DictionaryObject):
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)


def _add_flate_layer(stream: StreamObject) -> None:
    """Deflate the stream's stored bytes once more, first in its filter chain."""
    filters = stream.get("/Filter")
    filters = list(filters) if isinstance(filters, ArrayObject) else [filters] if filters else []
    stream[NameObject("/Filter")] = ArrayObject([NameObject("/FlateDecode"), *filters])
    parms = stream.get("/DecodeParms")
    if parms is not None:
        parms = list(parms) if isinstance(parms, ArrayObject) else [parms]
        stream[NameObject("/DecodeParms")] = ArrayObject([NullObject(), *parms])
    stream._data = zlib.compress(stream._data)
