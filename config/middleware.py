"""Request middleware of Confirma's own."""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from notifications.selectors import event_latest_id

# Requests that never render a page with a live event stream.
_NO_PAGE_PREFIXES = ("/api/", "/webhooks/", "/static/", "/healthz", "/ws/", "/admin/")


class EventsCursorMiddleware:
    """Note where the event log ends before the view reads anything.

    A page renders some state and then follows the events after it (`data-events-since`
    in base.html). Read after the view, the cursor could already include an event whose
    change the view did not see (a payment confirmed between the two reads), and the page
    would wait for it forever. Read first, an event can at worst arrive twice, which the
    client drops by id, or repeat what the page shows.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in ("GET", "HEAD") and not request.path.startswith(_NO_PAGE_PREFIXES):
            request.events_since = event_latest_id()
        return None


class AdminBusinessTimeMiddleware:
    """The admin shows times in the business's time zone (BUSINESS_TIME_ZONE), as the
    other pages do, and names it in its header: Django renders the admin's dates in the
    active zone, which is otherwise the server's (TIME_ZONE, UTC). Stored times, the API
    and everything outside the admin keep their zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        timezone.activate(ZoneInfo(settings.BUSINESS_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
