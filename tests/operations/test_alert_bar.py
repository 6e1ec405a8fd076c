"""Staff pages carry a live alert bar starting from the open alerts; others do not."""

import pytest

from notifications.services import alert_raise
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_staff_see_open_alerts_others_do_not(client):
    alert_raise(code="test.problem", message="Something needs a person.", context={"n": 1})
    client.force_login(UserFactory(roles=["staff"]))
    page = client.get("/").content.decode()
    assert 'id="alert-bar"' in page and 'data-open="1"' in page
    client.force_login(UserFactory(roles=["customer"]))
    assert 'id="alert-bar"' not in client.get("/").content.decode()


def test_periodic_jobs_run_the_operations_commands(settings):
    from django.core.management import get_commands

    commands = {job["command"] for job in settings.PERIODIC_JOBS}
    assert {
        "prune",
        "expire_payment_sessions",
        "retry_webhooks",
        "poll_providers",
        "monitor_payments",
        "expire_subscriptions",
    } <= commands
    assert commands <= set(get_commands())
