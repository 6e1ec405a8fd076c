"""Staff read what an alert means, in their language, never its code: every code the
code base raises has a label, and the staff alert bar carries them for the live events."""

import json
import re
from pathlib import Path

import pytest
from django.utils import translation

from notifications.labels import ALERT_LABELS, alert_label
from notifications.services import alert_raise
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "notifications", "payments", "subscriptions", "tickets", "orders")


@pytest.fixture(autouse=True)
def _language_back():
    # A request's Accept-Language stays active in this thread: later tests expect none.
    yield
    translation.deactivate()


def raised_codes() -> set[str]:
    """Alert codes written in the production code: `code="…"` next to alert_raise, the
    `_alert(session, "…")` helper (its f-strings expanded) and providers' (code, message)."""
    codes = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text()
            if "alert" not in text:
                continue
            codes |= set(re.findall(r'alert_raise\(\s*code="([a-z_.]+)"', text))
            codes |= set(re.findall(r'alert_raise\(\s*\n\s*code="([a-z_.]+)"', text))
            for found in re.findall(r'_alert\(\s*session,\s*f?"([a-z_.{}]+)"', text):
                for kind in ("refund", "chargeback"):
                    codes.add(found.replace("{kind}", kind))
            codes |= set(re.findall(r'alert = \(\s*"([a-z_]+\.[a-z_]+)"', text))
    return {code for code in codes if not code.startswith(("test.", "x"))}


def test_every_alert_code_raised_has_a_label():
    codes = raised_codes()
    assert {"webhook.dead", "payment.fulfilment_failed", "payment.chargeback"} <= codes
    assert codes - set(ALERT_LABELS) == set()


def test_an_unknown_code_never_shows():
    assert alert_label("something.new") == "Alert"
    assert alert_label("webhook.dead") == "Provider notification given up"


@pytest.mark.django_db
def test_the_alert_bar_carries_the_labels_in_the_readers_language(client):
    alert_raise(code="webhook.dead", message="Delivery 7 gave up.", context={"n": 1})
    client.force_login(UserFactory(roles=["staff"]))
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    labels = json.loads(re.search(r'id="alert-labels"[^>]*>(.*?)</script>', page, re.S)[1])
    with translation.override("es"):
        assert labels["webhook.dead"] == alert_label("webhook.dead")
    assert set(labels) == set(ALERT_LABELS)
    assert 'data-label-unknown="' in page
