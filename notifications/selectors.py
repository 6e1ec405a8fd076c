"""Reads of the event log."""

from django.db.models import Max

from notifications.models import Event


class Backlog:
    """Missed events for a resume, or `too_far_behind` when there are more than the limit."""

    def __init__(self, events: list[Event], too_far_behind: bool) -> None:
        self.events = events
        self.too_far_behind = too_far_behind


def events_after(*, audiences: list[str], since: int, limit: int) -> Backlog:
    rows = list(
        Event.objects.filter(audience__in=audiences, id__gt=since).order_by("id")[: limit + 1]
    )
    if len(rows) > limit:
        return Backlog([], too_far_behind=True)
    return Backlog(rows, too_far_behind=False)


def events_since_any(*, after: int, limit: int = 1000) -> list[Event]:
    """Every event with an id above `after`, oldest first (for the process-local relay)."""
    return list(Event.objects.filter(id__gt=after).order_by("id")[:limit])


def event_latest_id() -> int:
    return Event.objects.aggregate(m=Max("id"))["m"] or 0


def events_recent(*, audiences: list[str], limit: int = 20) -> list[Event]:
    return list(Event.objects.filter(audience__in=audiences).order_by("-id")[:limit])
