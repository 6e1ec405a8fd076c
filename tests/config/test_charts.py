"""The last 24 hours' charts: hourly series from the database, drawn as SVG."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone, translation

from config import charts
from config.series import last_day_series
from tests.factories import (
    PaymentSessionFactory,
    UserFactory,
    WebhookDeliveryFactory,
    WebhookRefusalFactory,
)

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
# 10:30 in São Paulo (UTC-3): the current hour is the 24th bucket, 10:00–11:00 local.
NOW = datetime(2026, 12, 6, 13, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0, day: int = 6) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def delivery(status: str, received: datetime, processed: datetime | None = None):
    return WebhookDeliveryFactory(status=status, received_at=received, processed_at=processed)


def payment(created: datetime, status="pending", completed=None, fulfilled=None):
    return PaymentSessionFactory(
        purpose="kiosk",
        status=status,
        expires_at=created + timedelta(hours=1),
        created_at=created,
        completed_at=completed,
        fulfilled_at=fulfilled,
    )


@pytest.fixture
def known_day(settings):
    settings.BUSINESS_TIME_ZONE = "America/Sao_Paulo"
    # Bucket 0 is 11:00 local on the 5th (14:00 UTC); bucket 22 is 09:00 local (12:00 UTC).
    delivery("processed", at(13, 0, day=5), at(13, 1, day=5))  # before the window
    delivery("rejected", at(14, 30, day=5), at(14, 31, day=5))  # bucket 0
    delivery("duplicate", at(12, 10), at(13, 20))  # bucket 22, still waiting at 13:00
    delivery("dead", at(12, 20), at(12, 50))  # bucket 22
    delivery("failed", at(12, 40), at(12, 41))  # bucket 22, waits for a retry
    for minute in (5, 6, 7):
        delivery("processed", at(13, minute), at(13, minute + 1))  # bucket 23
    delivery("received", at(13, 10))  # bucket 23, waiting now
    WebhookRefusalFactory(
        reason="invalid signature",
        window_start=at(12),
        first_at=at(12, 1),
        last_at=at(12, 59),
        count=4,
    )
    # Bucket 21 (08:00 local): four sessions, three paid, delivered after 2, 4 and 100 s.
    for seconds in (2, 4, 100):
        paid = at(11, 10)
        payment(at(11, 5), "completed", paid, paid + timedelta(seconds=seconds))
    payment(at(11, 20))
    payment(at(13, 15))  # bucket 23: created, not paid
    return last_day_series(now=NOW)


def svg_of(figure: str) -> ET.Element:
    # Our own markup, drawn in this test: no untrusted XML here.
    return ET.fromstring(re.search(r"<svg .*?</svg>", figure, re.S).group(0))  # noqa: S314


def test_series_have_the_exact_hourly_numbers(known_day):
    webhooks = known_day["webhooks"].values
    assert webhooks["rejected"][0] == 1
    assert [webhooks[k][22] for k in ("duplicate", "failed", "refused")] == [1, 2, 4]
    assert webhooks["processed"][23] == 3 and webhooks["waiting"][23] == 1
    assert sum(sum(values) for values in webhooks.values()) == 1 + 1 + 2 + 4 + 3 + 1

    conversion = known_day["conversion"]
    assert conversion.extra["created"][21] == 4 and conversion.extra["paid"][21] == 3
    assert conversion.values["conversion"][21] == 75.0
    assert conversion.values["conversion"][23] == 0.0
    assert conversion.values["conversion"].count(None) == 22

    fulfil = known_day["fulfil_p95"]
    assert fulfil.values["p95"][21] == 100.0 and fulfil.extra["count"][21] == 3
    assert fulfil.values["p95"].count(None) == 23

    backlog = known_day["backlog"]
    # At 13:00 UTC the duplicate (until 13:20) and the failed one waited; the oldest since 12:10.
    assert backlog.values["waiting"][22] == 2 and backlog.extra["oldest_seconds"][22] == 3000
    # Now (13:30): the failed one and the one just received; the oldest since 12:40.
    assert backlog.values["waiting"][23] == 2 and backlog.extra["oldest_seconds"][23] == 3000
    assert backlog.values["waiting"][0] == 0


def test_the_hours_are_the_business_zones(known_day):
    starts = known_day["webhooks"].hours.starts
    assert len(starts) == 24
    assert starts[-1].hour == 10 and starts[-1].utcoffset() == timedelta(hours=-3)
    assert starts[0].astimezone(UTC) == at(14, day=5)


def test_svg_bars_and_points_are_proportional_to_the_numbers(known_day):
    figures = charts.last_day_charts(known_day)
    bars = svg_of(figures[0])
    rects = bars.iter(f"{SVG}rect")
    drawn = [
        (r.get("data-series"), float(r.get("data-value")), float(r.get("height"))) for r in rects
    ]
    expected = {"rejected": 1, "duplicate": 1, "failed": 2, "refused": 4, "processed": 3}
    expected["waiting"] = 1
    assert sorted((s, v) for s, v, _h in drawn) == sorted(expected.items())
    # Hour 22 stacks 7 under a top of 10: every unit has the same height.
    assert bars.get("data-top") == "10"
    unit = charts.PLOT_H / 10
    assert all(h == pytest.approx(v * unit, abs=0.02) for _s, v, h in drawn)
    assert bars.find(f"{SVG}title").text and bars.find(f"{SVG}desc").text

    points = list(svg_of(figures[1]).iter(f"{SVG}circle"))
    assert [float(p.get("data-value")) for p in points] == [75.0, 0.0]
    bottom = charts.TOP + charts.PLOT_H
    assert [bottom - float(p.get("cy")) for p in points] == pytest.approx([0.75 * charts.PLOT_H, 0])
    assert [float(r.get("height")) for r in svg_of(figures[3]).iter(f"{SVG}rect")] == (
        pytest.approx([charts.PLOT_H] * 2)
    )
    # The numbers are there as a table too.
    assert "<details" in figures[1] and "<td>75.0</td>" in figures[1]


def test_labels_and_numbers_in_portuguese(known_day):
    with translation.override("pt-br"):
        figures = charts.last_day_charts(known_day)
    conversion = figures[1]
    assert "Conversão" in conversion and "Criadas" in conversion and "Pagas" in conversion
    assert "<td>75,0</td>" in conversion
    # Hour labels in the business zone, every third hour ending on the current one.
    labels = [
        t.text for t in svg_of(figures[0]).iter(f"{SVG}text") if t.get("class") == "chart-x-label"
    ]
    assert labels == ["13:00", "16:00", "19:00", "22:00", "01:00", "04:00", "07:00", "10:00"]


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    return client


def test_an_empty_day_says_no_data_yet(staff):
    for url in ("/operations/", "/integration/"):
        page = staff.get(url).content.decode()
        assert page.count('class="chart-empty') == 4
        assert "<svg" not in page.split('id="charts"')[1].split("</section>")[0]
        assert "css/charts.css" in page


def test_pages_show_the_charts_to_staff_only(client, known_day, django_assert_max_num_queries):
    delivery("processed", timezone.now() - timedelta(minutes=90), timezone.now())
    client.force_login(UserFactory(roles=["waiter"]))
    assert client.get("/operations/").status_code == 403
    assert client.get("/integration/").status_code == 403
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    for url in ("/operations/", "/integration/"):
        page = client.get(url).content.decode()
        for chart_id in ("webhooks", "conversion", "fulfil-p95", "backlog"):
            assert f'id="chart-{chart_id}"' in page
        webhooks = page.split('id="chart-webhooks"')[1].split("</figure>")[0]
        assert 'data-series="processed"' in webhooks and "css/charts.css" in page
    # The live refresh still answers its fragment, without the charts.
    fragment = client.get("/operations/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="payments-health"' in fragment and 'id="charts"' not in fragment
    fragment = client.get("/integration/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="health-status"' in fragment and 'id="charts"' not in fragment
    # The charts add five statements, whatever the number of rows.
    with django_assert_max_num_queries(56):
        assert client.get("/operations/").status_code == 200


def test_the_series_take_one_query_each(known_day, django_assert_num_queries):
    with django_assert_num_queries(5):
        last_day_series(now=NOW)


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_colours_reach_aa_contrast_on_white(known_day):
    def contrast(colour: str) -> float:
        return 1.05 / (_luminance(colour) + 0.05)

    # Graphics need 3:1 (WCAG 1.4.11); the axis text, drawn in the SVG, 4.5:1.
    assert min(contrast(colour) for colour in charts.COLOURS.values()) >= 3
    figure = charts.last_day_charts(known_day)[0]
    text_colours = {t.get("fill") for t in svg_of(figure).iter(f"{SVG}text")}
    assert text_colours and all(contrast(colour) >= 4.5 for colour in text_colours)
