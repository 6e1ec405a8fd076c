"""Publishing to the event log and pushing to connected screens.

`event_publish` writes events inside the caller's transaction; they are pushed through
the channel layer only after that transaction commits, so an event from a rolled-back
transaction is never seen. The push is best effort (the channel layer may drop or be
down); the log and the clients' resume make delivery at-least-once per connection.
"""

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from notifications.audiences import audience_group, audience_validate
from notifications.errors import NotificationError
from notifications.models import Event

logger = logging.getLogger(__name__)

PUSH_MESSAGE_TYPE = "event.push"


def event_publish(*, audience: str | Iterable[str], type: str, payload: dict | None = None):
    """Append one event per audience; push them once the surrounding transaction commits.

    Raises InvalidAudience for a malformed audience and NotificationError for a payload
    that is not a JSON object; nothing is written then.
    """
    audiences = [audience] if isinstance(audience, str) else list(dict.fromkeys(audience))
    for name in audiences:
        audience_validate(name)
    if not type or len(type) > 100:
        raise NotificationError("An event needs a type of at most 100 characters.")
    if payload is not None and not isinstance(payload, dict):
        raise NotificationError("An event payload must be a JSON object.")
    data = json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder))
    now = timezone.now()
    with transaction.atomic():
        events = [
            Event.objects.create(audience=name, type=type, payload=data, created_at=now)
            for name in audiences
        ]
        frames = [(event.audience, event.as_frame()) for event in events]
        transaction.on_commit(lambda: events_push(frames))
    for event in events:
        logger.info("event %s %s -> %s", event.id, event.type, event.audience)
    return events


def events_push(frames: list[tuple[str, dict]]) -> None:
    """Send already-committed frames to their audiences' groups; never raises.

    Caller must not hold database locks (this talks to the channel layer).
    """
    if not frames:
        return
    layer = get_channel_layer()

    async def send_all() -> None:
        for audience, frame in frames:
            await layer.group_send(
                audience_group(audience), {"type": PUSH_MESSAGE_TYPE, "frame": frame}
            )

    try:
        async_to_sync(send_all)()
    except Exception as exc:
        # Clients catch up from the log on their next resume.
        logger.warning(
            "event push failed (%s) for events %s",
            exc.__class__.__name__,
            ",".join(str(f["id"]) for _, f in frames),
        )


def events_prune(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete events older than `older_than`, in batches; returns how many went."""
    cutoff = timezone.now() - older_than
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += Event.objects.filter(id__in=ids).delete()[0]


def alert_raise(*, code: str, message: str, context: dict | None = None) -> None:
    """Tell staff something needs a person: an ERROR log line now, and an `alert.raised`
    event to `role:staff` when the surrounding transaction commits."""
    context = context or {}
    logger.error("alert %s: %s %s", code, message, json.dumps(context, cls=DjangoJSONEncoder))
    event_publish(
        audience="role:staff",
        type="alert.raised",
        payload={"code": code, "message": str(message), "context": context},
    )
