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

Thermal printers have no Unicode: each job selects one code page (ESC t n) for the
language it is printed in, and its text is reduced to what that page can print
(`printable`): Cyrillic in CP866, the Latin languages in CP860, Uzbek's oʻ/gʻ with a
plain apostrophe.
"""

import socket
import unicodedata
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from escpos.capabilities import get_profile
from escpos.printer import Dummy

from tickets.cpf import name_mask

STATUS_REQUEST = b"\x10\x04\x01"  # DLE EOT 1: printer status
OFFLINE_BIT = 0x08
CODE_PAGE = "CP860"  # Portuguese; also has Spanish ñ, ¿, ¡ and the accented vowels
CYRILLIC_CODE_PAGE = "CP866"  # Russian; ESC t 17 on Epson-compatible printers
# The code page each language prints in; any other language prints in CODE_PAGE.
LANGUAGE_CODE_PAGES = {"ru": CYRILLIC_CODE_PAGE}
# For printers whose profile lacks those: the nearest pages, best first.
CYRILLIC_FALLBACKS = ("CP1251", "CP855", "ISO_8859-5")
LATIN_FALLBACKS = ("CP860", "CP850", "CP858", "CP1252", "CP437")
# Letters no code page of ours has, written as the nearest printable ones: Uzbek Latin's
# oʻ/gʻ (modifier letters and the apostrophes people type for them) and Uzbek Cyrillic's
# ғ/қ/ҳ (CP866 has ў but not these).
PRINTABLE_SUBSTITUTES = {
    "\u02bb": "'",  # ʻ modifier letter turned comma (oʻ, gʻ)
    "\u02bc": "'",  # ʼ modifier letter apostrophe (tutuq belgisi)
    "\u2018": "'",
    "\u2019": "'",
    "Ғ": "Г",
    "ғ": "г",
    "Қ": "К",
    "қ": "к",
    "Ҳ": "Х",
    "ҳ": "х",
    "Ҷ": "Ч",
    "ҷ": "ч",
    "«": '"',
    "»": '"',
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
}


class PrintError(Exception):
    """Sending failed. `maybe_printed`: it failed after the first byte left, so the printer
    may have printed the job anyway."""

    def __init__(self, message: str, *, maybe_printed: bool = False) -> None:
        super().__init__(message)
        self.maybe_printed = maybe_printed


def code_page_for(language: str | None, *texts: str, profile: str = "default") -> str:
    """The code page a job prints in: its language's (Cyrillic for Russian), and CP866 as
    well when any of its texts is written in Cyrillic (a Russian name on an Uzbek kiosk,
    a business name in Cyrillic): CP866 also has every ASCII letter. A printer whose
    profile lacks that page gets the nearest one it has (CP1251 for Cyrillic, CP850 or
    CP437 for Latin), and `printable` makes the text fit it."""
    language = (language or settings.LANGUAGE_CODE).lower()
    page = LANGUAGE_CODE_PAGES.get(language, CODE_PAGE)
    if page == CODE_PAGE and any(_cyrillic(text) for text in texts):
        page = CYRILLIC_CODE_PAGE
    has = _profile_code_pages(profile)
    if page in has:
        return page
    nearest = CYRILLIC_FALLBACKS if page == CYRILLIC_CODE_PAGE else ()
    for candidate in (*nearest, *LATIN_FALLBACKS):
        if candidate in has:
            return candidate
    return page


def _profile_code_pages(profile: str) -> set[str]:
    try:
        return set(get_profile(profile).get_code_pages())
    except Exception:
        return set()


def _cyrillic(text: str) -> bool:
    return any("\u0400" <= char <= "\u04ff" for char in text or "")


def printable(text: str, code_page: str) -> str:
    """`text` with only characters `code_page` can print: known substitutes first (oʻ →
    o'), then a letter without its accent (ã → a in CP866), then "?"."""
    encoding = code_page.lower()

    def fits(text: str) -> bool:
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            return False
        return True

    out = []
    for char in str(text):
        if not fits(char):
            plain = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if not unicodedata.combining(part)
            )
            for candidate in (PRINTABLE_SUBSTITUTES.get(char, ""), plain, "?"):
                if candidate and fits(candidate):
                    char = candidate
                    break
        out.append(char)
    return "".join(out)


def ticket_render(ticket, *, profile: str = "default") -> bytes:
    """The ticket's ESC/POS bytes, in the code page of the language the customer used at
    the kiosk, its time in BUSINESS_TIME_ZONE."""
    language = (ticket.payment_session.params or {}).get("language")
    name = name_mask(ticket.customer_name) if ticket.customer_name else ""
    page = code_page_for(
        language, settings.BUSINESS_NAME, ticket.service.name, name, profile=profile
    )
    printer = Dummy(profile=profile)
    printer.charcode(page)
    printer.set(align="center", bold=True)
    printer.textln(printable(settings.BUSINESS_NAME, page))
    printer.set(align="center", normal_textsize=True)
    printer.textln(printable(ticket.service.name, page))
    printer.set(align="center", bold=True, double_height=True, double_width=True)
    printer.textln(printable(ticket.code, page))
    printer.set(align="center", normal_textsize=True)
    local = ticket.paid_at.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE))
    printer.textln(local.strftime("%d/%m/%Y %H:%M"))
    if name:
        printer.textln(printable(name, page))
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
        page = code_page_for(language or settings.LANGUAGE_CODE, title, note, profile=profile)
    return banner_render(title, note, profile=profile, code_page=page)


def banner_render(
    title: str, note: str, *, profile: str = "default", code_page: str = CODE_PAGE
) -> bytes:
    """ESC/POS bytes of a banner: `title` large and inverted, `note` below it."""
    printer = Dummy(profile=profile)
    printer.charcode(code_page)
    printer.set(align="center", bold=True, invert=True, double_height=True, double_width=True)
    printer.textln(f" {printable(title, code_page)} ")
    printer.set(align="center", normal_textsize=True)
    printer.textln(printable(note, code_page))
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
