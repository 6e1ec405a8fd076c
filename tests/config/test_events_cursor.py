"""A page follows the events after the state it rendered: the cursor it hands the event
stream is taken before the view reads anything, so a change committed while the view runs
is replayed to the page, never skipped."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse

from config.context_processors import navigation
from config.middleware import EventsCursorMiddleware
from notifications.services import event_publish

pytestmark = pytest.mark.django_db


def _view(request):
    # A payment confirmed by a webhook while this page is being built.
    event_publish(audience="payment:ps_x", type="payment.confirmed", payload={})
    return HttpResponse()


@pytest.mark.parametrize("path", ["/payments/ps_x/", "/kiosk/wait/ps_x/"])
def test_the_cursor_is_where_the_log_ended_before_the_view(rf, path):
    (before,) = event_publish(audience="payment:ps_x", type="payment.created", payload={})
    request = rf.get(path)
    request.user = AnonymousUser()
    middleware = EventsCursorMiddleware(_view)
    assert middleware.process_view(request, _view, (), {}) is None
    middleware(request)
    assert navigation(request)["events_since"]() == before.id


def test_api_and_webhooks_do_not_pay_for_a_cursor(rf):
    for request in (rf.get("/api/me/"), rf.post("/payments/topup/"), rf.post("/webhooks/kiosk/")):
        EventsCursorMiddleware(_view).process_view(request, _view, (), {})
        assert not hasattr(request, "events_since")
