from config.navigation import pages_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_pages": []}

    def events_since():
        # Lets the page's event stream start exactly where the rendered state ends.
        from notifications.selectors import event_latest_id

        return event_latest_id()

    def open_alerts():
        # Staff pages show a live alert bar; it starts from the alerts nobody resolved yet.
        from config.roles import has_role
        from notifications.models import Alert

        if not has_role(user, "staff"):
            return None
        return Alert.objects.filter(resolved_at__isnull=True).count()

    return {"nav_pages": pages_for(user), "events_since": events_since, "open_alerts": open_alerts}
