"""POST /api/integration/test/: a real payment through the real webhook URL."""

import pytest

from tests.factories import PrinterFactory, TokenFactory, UserFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_inline(settings):
    """No worker process here: run tasks as they are enqueued."""
    # django-tasks drops its cached backends when the TASKS setting changes.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    yield


def test_self_test_reports_each_step(
    live_server, settings, kiosk_secret, service, worker_inline, webhook_worker
):
    settings.PUBLIC_BASE_URL = live_server.url
    PrinterFactory(name="Demo")
    staff = UserFactory(roles=["staff"])
    token = TokenFactory(user=staff)
    from django.test import Client

    response = Client().post("/api/integration/test/", HTTP_AUTHORIZATION=f"Token {token.key}")
    body = response.json()
    assert response.status_code == 200, body
    assert [s["step"] for s in body["steps"]] == [
        "service",
        "session_created",
        "webhook",
        "ticket_created",
        "printed",
    ]
    assert all(s["ok"] for s in body["steps"])
    assert body["steps"][-1]["seconds"] < 15
    # It printed, then left the queue: a self-test ticket is never called.
    assert Ticket.objects.get(payment_session__reference=body["reference"]).status == "cancelled"


def test_self_test_is_for_staff_only(client):
    client.force_login(UserFactory(roles=["operator"]))
    assert client.post("/api/integration/test/").status_code == 403
    assert client.post("/api/integration/test/", HTTP_AUTHORIZATION="Token nope").status_code == 403
