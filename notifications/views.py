from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from notifications.audiences import user_audiences
from notifications.selectors import events_recent


@login_required
@require_GET
def activity(request):
    """The live activity page: the latest events of the user's audiences."""
    return render(request, "notifications/activity.html", _activity_context(request))


@login_required
@require_GET
def activity_fragment(request):
    """The event list alone, re-fetched by the page whenever an event arrives."""
    return render(request, "notifications/_activity_list.html", _activity_context(request))


def _activity_context(request) -> dict:
    audiences = user_audiences(request.user)
    return {"events": events_recent(audiences=audiences, limit=30), "audiences": audiences}
