"""Rendering tickets to ESC/POS bytes (python-escpos) and sending them to a printer.

A job is built with the `Dummy` printer and sent in one go. Sending has short connect,
write and read timeouts: a network printer must also answer a real-time status request
(DLE EOT 1) after the job, so a printer that accepts the connection but never reads
fails in bounded time instead of hanging a worker.
"""

import socket
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.utils import timezone
from escpos.printer import Dummy

from tickets.cpf import name_mask

STATUS_REQUEST = b"\x10\x04\x01"  # DLE EOT 1: printer status
OFFLINE_BIT = 0x08
CODE_PAGE = "CP860"  # Portuguese; also has Spanish ñ, ¿, ¡ and the accented vowels


class PrintError(Exception):
    pass


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


def printer_send(url: str, data: bytes, *, timeout: float | None = None) -> None:
    """Send `data` to the printer at `url`; raises PrintError on any failure."""
    timeout = settings.PRINT_TIMEOUT_SECONDS if timeout is None else timeout
    parsed = urlparse(url)
    if parsed.scheme == "dummy":
        return
    if parsed.scheme == "file":
        try:
            with Path(parsed.path).open("ab") as handle:
                handle.write(data)
        except OSError as exc:
            raise PrintError(f"cannot write to {parsed.path}: {exc.strerror}") from exc
        return
    if parsed.scheme != "tcp" or not parsed.hostname:
        raise PrintError(f"unsupported printer URL: {url[:80]}")
    try:
        with socket.create_connection(
            (parsed.hostname, parsed.port or 9100), timeout=timeout
        ) as conn:
            conn.settimeout(timeout)
            conn.sendall(data + STATUS_REQUEST)
            status = conn.recv(1)
    except TimeoutError as exc:
        raise PrintError("the printer did not answer in time") from exc
    except OSError as exc:
        raise PrintError(f"cannot reach the printer: {exc.strerror or exc}") from exc
    if not status:
        raise PrintError("the printer closed the connection")
    if status[0] & OFFLINE_BIT:
        raise PrintError("the printer reports it is offline")
