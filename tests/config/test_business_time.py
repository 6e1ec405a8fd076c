"""Pages show times in the business's zone, named; stored values and the API stay UTC."""

from datetime import UTC, datetime

import pytest
from django.utils import translation

from core.formatting import business_time_text
from tests.config.test_settings import run
from tests.factories import PrinterFactory, UserFactory

MOMENT = datetime(2026, 12, 6, 12, 41, 5, tzinfo=UTC)
NNBSP = "\u202f"  # Babel puts a narrow no-break space before AM/PM


def test_a_moment_is_written_in_the_business_zone_and_names_it(settings):
    settings.BUSINESS_TIME_ZONE = "America/Sao_Paulo"
    with translation.override("pt-br"):
        assert business_time_text(MOMENT) == "6 de dez. de 2026 09:41:05 (America/Sao_Paulo)"
    assert (
        business_time_text(MOMENT.isoformat(), language="en")
        == f"Dec 6, 2026, 9:41:05{NNBSP}AM (America/Sao_Paulo)"
    )
    settings.BUSINESS_TIME_ZONE = "Asia/Tashkent"
    assert business_time_text("2026-12-06T12:41:05+00:00", language="es") == (
        "6 dic 2026, 17:41:05 (Asia/Tashkent)"
    )
    assert business_time_text(None) == "" and business_time_text("never") == "never"


@pytest.mark.django_db
def test_operations_page_shows_printer_times_in_the_business_zone(client, settings):
    settings.BUSINESS_TIME_ZONE = "America/Sao_Paulo"
    PrinterFactory(name="Balcão", last_success_at=MOMENT)
    client.force_login(UserFactory(roles=["staff"]))
    page = client.get("/operations/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    assert (
        '<time datetime="2026-12-06T12:41:05+00:00">'
        "6 de dez. de 2026 09:41:05 (America/Sao_Paulo)</time>"
    ) in page
    assert 'id="generated-at">' in page and "(America/Sao_Paulo)</time>" in page
    english = client.get("/operations/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Dec 6, 2026, 9:41:05{NNBSP}AM (America/Sao_Paulo)</time>" in english
    # The API keeps the stored UTC instant.
    api = client.get("/api/integration/status/").json()
    [printer] = [p for p in api["printers"] if p["name"] == "Balcão"]
    assert printer["last_success_at"] == "2026-12-06T12:41:05+00:00"


def test_a_bad_zone_is_refused_at_start_up():
    done = run(
        "import django; django.setup()",
        {"DEBUG": "true", "BUSINESS_TIME_ZONE": "America/Atlantis"},
        python_code=True,
    )
    assert done.returncode != 0
    assert "BUSINESS_TIME_ZONE='America/Atlantis' is not an IANA time zone" in done.stderr


def test_the_default_zone_is_sao_paulo():
    done = run(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.BUSINESS_TIME_ZONE)",
        {"DEBUG": "true"},
        python_code=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "America/Sao_Paulo"


def test_integration_page_shows_paid_at_in_the_business_zone(settings):
    from django.template.loader import render_to_string

    settings.BUSINESS_TIME_ZONE = "America/Sao_Paulo"
    missing = {
        "session": 7,
        "reference": "ps_known",
        "provider": "kiosk",
        "amount": "5.00",
        "currency": "BRL",
        "paid_at": MOMENT.isoformat(),
        "held": "",
        "error": "",
    }
    health = {"status": "critical", "totals": {}, "paid_without_ticket": [missing]}
    with translation.override("pt-br"):
        html = render_to_string("tickets/_integration.html", {"health": health})
    row = html[html.index('<tr data-reference="ps_known">') :]
    assert (
        '<td class="paid-at"><time datetime="2026-12-06T12:41:05+00:00">'
        "6 de dez. de 2026 09:41:05 (America/Sao_Paulo)</time></td>"
    ) in row
    assert "<td>R$\xa05,00</td>" in row
