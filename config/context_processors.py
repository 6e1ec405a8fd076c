from config.navigation import pages_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_pages": []}

    def events_since():
        # Lets the page's event stream start exactly where the rendered state ends.
        from notifications.selectors import event_latest_id

        return event_latest_id()

    return {"nav_pages": pages_for(user), "events_since": events_since}
