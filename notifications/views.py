from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from core.pages import render_page
from notifications.audiences import user_audiences
from notifications.selectors import events_recent


@login_required
@require_GET
def activity(request):
    """The live activity page: the latest events of the user's audiences."""
    return render_page(
        request,
        "notifications/activity.html",
        "notifications/_activity_list.html",
        _activity_context(request),
    )


def _activity_context(request) -> dict:
    audiences = user_audiences(request.user)
    return {"events": events_recent(audiences=audiences, limit=30), "audiences": audiences}
