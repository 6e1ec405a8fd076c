"""Printed tickets in every language: one code page per job (ESC t n), chosen for the
language the customer used at the kiosk, and text the printer can show (no "?")."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import translation
from django.utils.translation import gettext

from tests.factories import ServiceFactory
from tests.tickets.conftest import paid_ticket
from tickets.printing import code_page_for, printable, reprint_banner_render, ticket_render

pytestmark = pytest.mark.django_db

SELECT_CP860 = b"\x1bt\x03"  # ESC t 3: PC860 (Portuguese)
SELECT_CP866 = b"\x1bt\x11"  # ESC t 17: PC866 (Cyrillic #2)


def test_a_russian_ticket_prints_in_cp866(dummy_printer, settings):
    settings.BUSINESS_NAME = "Центр услуг «Ташкент»"
    service = ServiceFactory(name="Выдача справки", prefix="C", price=Decimal("5"))
    ticket = paid_ticket(
        service, printed=False, language="ru", customer_name="Иван Петрович Смирнов"
    )
    data = ticket_render(ticket)
    assert data.startswith(SELECT_CP866) and SELECT_CP860 not in data
    for text in ('Центр услуг "Ташкент"', "Выдача справки", "Иван С.", "C-001"):
        assert text.encode("cp866") in data, text
    assert b"?" not in data.split(b"\x1d(k")[0]  # nothing unprintable before the QR code


def test_an_uzbek_ticket_prints_its_letters_as_the_printer_can(dummy_printer, settings):
    settings.BUSINESS_NAME = "Oʻzbekiston xizmat markazi"
    service = ServiceFactory(name="Gʻaznachilik maʼlumotnomasi", prefix="U", price=1)
    ticket = paid_ticket(service, printed=False, language="uz", customer_name="Gʻayrat Oʻrinov")
    data = ticket_render(ticket)
    assert data.startswith(SELECT_CP860)
    for text in ("O'zbekiston xizmat markazi", "G'aznachilik ma'lumotnomasi", "G'ayrat O."):
        assert text.encode("cp860") in data, text
    assert b"?" not in data.split(b"\x1d(k")[0]


def test_a_cyrillic_name_on_a_latin_kiosk_switches_to_cp866(dummy_printer, service):
    ticket = paid_ticket(service, printed=False, language="uz", customer_name="Шоҳруҳ Қодиров")
    data = ticket_render(ticket)
    assert data.startswith(SELECT_CP866)
    assert "Шохрух К.".encode("cp866") in data
    # The Portuguese service name keeps its letters, without the accents CP866 lacks.
    assert "Emissao de 2a via".encode("cp866") in data


def test_the_ticket_time_is_the_business_time(dummy_printer, service, settings):
    settings.BUSINESS_TIME_ZONE = "Asia/Tashkent"
    ticket = paid_ticket(service, printed=False, language="ru")
    ticket.paid_at = datetime(2026, 12, 6, 21, 30, tzinfo=UTC)
    assert b"07/12/2026 02:30" in ticket_render(ticket)


@pytest.mark.parametrize("language", ["ru", "uz"])
def test_the_reprint_banner_prints_in_russian_and_uzbek(language):
    with translation.override(language):
        title = gettext("REPRINT")
    banner = reprint_banner_render(language=language)
    page = "cp866" if language == "ru" else "cp860"
    assert banner.startswith(SELECT_CP866 if language == "ru" else SELECT_CP860)
    assert f" {printable(title, page)} ".encode(page) in banner
    assert b"?" not in banner


def test_printable_substitutes_then_drops_accents_then_marks_the_rest():
    assert printable("oʻ gʻ maʼno o‘g‘il", "CP860") == "o' g' ma'no o'g'il"
    assert printable("Ўзбекистон Ғалаба Ҳамза", "CP866") == "Ўзбекистон Галаба Хамза"
    assert printable("São João ñ", "CP866") == "Sao Joao n"
    assert printable("São João ñ", "CP860") == "São João ñ"
    assert printable("票", "CP860") == "?"


def test_a_printer_without_the_page_gets_the_nearest_it_has(dummy_printer, service):
    ticket = paid_ticket(service, printed=False, language="ru", customer_name="Иван Петров")
    assert code_page_for("ru", profile="TM-T88V") == "CP866"
    assert code_page_for("ru", profile="T-1") == "CP860"  # no Cyrillic page at all
    assert code_page_for("pt-br", profile="TM-U220") == "CP437"
    data = ticket_render(ticket, profile="TM-U220")
    assert data.startswith(b"\x1bt\x00")  # ESC t 0: PC437, the only page it has
    assert "Emissao de 2ª via".encode("cp437") in data  # CP437 has ª but no ã
