"""The admin shows times in the business's time zone and names it; its event and alert
lists show labels, not codes."""

import re
from datetime import UTC, datetime

import pytest
from django.utils import translation

from notifications.models import Alert, Event
from notifications.services import alert_raise, event_publish
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_back():
    # A request's Accept-Language stays active in this thread: later tests expect none.
    yield
    translation.deactivate()


MOMENT = datetime(2026, 12, 6, 15, 7, 30, tzinfo=UTC)  # 20:07 in Tashkent


@pytest.fixture
def admin_client(client, settings):
    settings.BUSINESS_TIME_ZONE = "Asia/Tashkent"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_event_list_is_in_the_business_zone_with_labels(admin_client):
    (event,) = event_publish(audience="role:operator", type="ticket.print_error", payload={})
    Event.objects.filter(pk=event.pk).update(created_at=MOMENT)
    page = admin_client.get("/admin/notifications/event/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="business-zone"' in html and "Times in Asia/Tashkent" in html
    assert re.search(r"8:07 p\.m\.", html), "the time in Tashkent"
    assert not re.search(r"3:07 p\.m\.", html)
    assert "Ticket printing failed" in html and "Operators" in html
    assert ">ticket.print_error<" not in html and ">role:operator<" not in html


def test_the_alert_list_names_each_alert(admin_client):
    alert_raise(code="webhook.dead", message="Delivery 7 gave up.", context={"n": 1})
    assert Alert.objects.count() == 1
    html = admin_client.get("/admin/notifications/alert/").content.decode()
    assert "Provider notification given up" in html
    assert ">webhook.dead<" not in html


def test_pages_outside_the_admin_keep_the_servers_zone(admin_client, settings):
    from django.utils import timezone

    admin_client.get("/admin/")
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE
