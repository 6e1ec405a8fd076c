"""Payment-proof files: decided from their content, never from the name or declared type.

Images (JPEG, PNG, WebP) are verified and fully decoded by Pillow, then re-encoded, which
drops EXIF, GPS and any other metadata; PDFs must start with a PDF header and end with an
end-of-file marker. Everything else is refused.
"""

import io
import secrets
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from config.errors import ConfirmaError

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
        return CleanFile(data, "application/pdf", "pdf")
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
