"""Reads of the event log."""

from django.db.models import Max, Q

from notifications.models import Event


class Backlog:
    """Missed events for a resume, or `too_far_behind` when there are more than the limit."""

    def __init__(self, events: list[Event], too_far_behind: bool) -> None:
        self.events = events
        self.too_far_behind = too_far_behind


# Event ids are allocated before commit, so an event can become visible after a higher
# id was already delivered. A client that says which recent ids it has seen gets the ones
# in this window it has not.
RESUME_LOOKBACK = 200


def events_after(
    *,
    audiences: list[str],
    since: int,
    limit: int,
    seen: set[int] | None = None,
    floor: int | None = None,
) -> Backlog:
    """Missed events after `since`, oldest first. With `seen` and `floor` (where the client
    started listening), also the ones between `floor` and `since` that committed late and
    are not in `seen` (looking back at most RESUME_LOOKBACK ids)."""
    window = Q(id__gt=since)
    if seen is not None and floor is not None and floor < since:
        low = max(floor, since - RESUME_LOOKBACK)
        window |= Q(id__gt=low, id__lte=since) & ~Q(id__in=seen)
    rows = list(Event.objects.filter(window, audience__in=audiences).order_by("id")[: limit + 1])
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
