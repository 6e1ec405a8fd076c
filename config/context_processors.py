from core.navigation import nav_pages_for
from core.roles import has_role
from notifications.models import Alert
from notifications.selectors import event_latest_id


def navigation(request):
    user = getattr(request, "user", None)

    def events_since():
        # Lets the page's event stream start where the rendered state begins: noted before
        # the view ran (config.middleware.EventsCursorMiddleware).
        since = getattr(request, "events_since", None)
        if since is None:
            since = event_latest_id()
        return since

    if user is None or not user.is_authenticated:
        # Kiosk and display pages follow events with a signed token, without a login.
        return {"nav_pages": [], "events_since": events_since}

    def open_alerts():
        # Staff pages show a live alert bar; it starts from the alerts nobody resolved yet.
        if not has_role(user, "staff"):
            return None
        return Alert.objects.filter(resolved_at__isnull=True).count()

    return {
        "nav_pages": nav_pages_for(user),
        "events_since": events_since,
        "open_alerts": open_alerts,
    }
