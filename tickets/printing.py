"""Rendering tickets to ESC/POS bytes (python-escpos) and sending them to a printer.

A job is built with the `Dummy` printer and sent in one go. Sending has short connect,
write and read timeouts: a network printer must also answer a real-time status request
(DLE EOT 1) after the job, so a printer that accepts the connection but never reads
fails in bounded time instead of hanging a worker.

A failure before the first byte left (no connection, a file that cannot be opened) means
nothing was printed. A failure after it (the write broke, the status never came, the
printer says it is offline with the job in its buffer) means the paper may have come out:
`PrintError.maybe_printed` says so, and the next attempt carries `reprint_banner_render`
above the ticket.
"""

import socket
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext
from escpos.printer import Dummy

from tickets.cpf import name_mask

STATUS_REQUEST = b"\x10\x04\x01"  # DLE EOT 1: printer status
OFFLINE_BIT = 0x08
CODE_PAGE = "CP860"  # Portuguese; also has Spanish ñ, ¿, ¡ and the accented vowels


class PrintError(Exception):
    """Sending failed. `maybe_printed`: it failed after the first byte left, so the printer
    may have printed the job anyway."""

    def __init__(self, message: str, *, maybe_printed: bool = False) -> None:
        super().__init__(message)
        self.maybe_printed = maybe_printed


def ticket_render(ticket, *, profile: str = "default") -> bytes:
    printer = Dummy(profile=profile)
    printer.charcode(CODE_PAGE)
    printer.set(align="center", bold=True)
    printer.textln(settings.BUSINESS_NAME)
    printer.set(align="center", normal_textsize=True)
    printer.textln(ticket.service.name)
    printer.set(align="center", bold=True, double_height=True, double_width=True)
    printer.textln(ticket.code)
    printer.set(align="center", normal_textsize=True)
    local = timezone.localtime(ticket.paid_at)
    printer.textln(local.strftime("%d/%m/%Y %H:%M"))
    if ticket.customer_name:
        printer.textln(name_mask(ticket.customer_name))
    if ticket.cpf_masked:
        printer.textln(f"CPF {ticket.cpf_masked}")
    printer.qr(ticket.payment_session.reference, size=5, native=True)
    printer.textln("")
    printer.cut()
    return printer.output


def reprint_banner_render(*, language: str | None = None, profile: str = "default") -> bytes:
    """The banner printed above a ticket that may already have come out of the printer:
    "REPRINT" in large inverted letters and a line telling the customer that both slips
    are one ticket. In `language` (default settings.LANGUAGE_CODE), in the ticket's code
    page; the result is prepended, unchanged, to the ticket's own bytes."""
    with translation.override(language or settings.LANGUAGE_CODE):
        title = gettext("REPRINT")
        note = gettext(
            "Another copy of this ticket may exist: same number, same place in the queue."
        )
    return banner_render(title, note, profile=profile)


def banner_render(title: str, note: str, *, profile: str = "default") -> bytes:
    """ESC/POS bytes of a banner: `title` large and inverted, `note` below it."""
    printer = Dummy(profile=profile)
    printer.charcode(CODE_PAGE)
    printer.set(align="center", bold=True, invert=True, double_height=True, double_width=True)
    printer.textln(f" {title} ")
    printer.set(align="center", normal_textsize=True)
    printer.textln(note)
    printer.textln("-" * 32)
    return printer.output


def printer_send(url: str, data: bytes, *, timeout: float | None = None) -> None:
    """Send `data` to the printer at `url`; raises PrintError on any failure."""
    timeout = settings.PRINT_TIMEOUT_SECONDS if timeout is None else timeout
    parsed = urlparse(url)
    if parsed.scheme == "dummy":
        return
    if parsed.scheme == "file":
        _file_send(Path(parsed.path), data)
        return
    if parsed.scheme != "tcp" or not parsed.hostname:
        raise PrintError(f"unsupported printer URL: {url[:80]}")
    try:
        conn = socket.create_connection((parsed.hostname, parsed.port or 9100), timeout=timeout)
    except TimeoutError as exc:
        raise PrintError("the printer did not answer in time") from exc
    except OSError as exc:
        raise PrintError(f"cannot reach the printer: {exc.strerror or exc}") from exc
    # From here on bytes may have reached the printer: any failure may have printed.
    with conn:
        try:
            conn.settimeout(timeout)
            conn.sendall(data + STATUS_REQUEST)
            status = conn.recv(1)
        except TimeoutError as exc:
            raise PrintError("the printer did not answer in time", maybe_printed=True) from exc
        except OSError as exc:
            raise PrintError(
                f"the connection broke while sending: {exc.strerror or exc}", maybe_printed=True
            ) from exc
    if not status:
        raise PrintError("the printer closed the connection", maybe_printed=True)
    if status[0] & OFFLINE_BIT:
        # An offline printer (cover open, paper out) keeps the job and prints it later.
        raise PrintError("the printer reports it is offline", maybe_printed=True)


def _file_send(path: Path, data: bytes) -> None:
    try:
        handle = path.open("ab")
    except OSError as exc:
        raise PrintError(f"cannot write to {path}: {exc.strerror}") from exc
    with handle:
        try:
            handle.write(data)
            handle.flush()
        except OSError as exc:
            raise PrintError(f"cannot write to {path}: {exc.strerror}", maybe_printed=True) from exc
