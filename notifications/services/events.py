"""Publishing to the event log and pushing to connected screens.

`event_publish` writes events inside the caller's transaction; they are pushed through
the channel layer only after that transaction commits, so an event from a rolled-back
transaction is never seen. The push is best effort (the channel layer may drop or be
down); the log and the clients' resume make delivery at-least-once per connection.
"""

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from notifications.audiences import audience_group, audience_validate
from notifications.errors import NotificationError
from notifications.models import Event

logger = logging.getLogger(__name__)

PUSH_MESSAGE_TYPE = "event.push"
# The longest a push may hold up the request or task that published the events.
PUSH_TIMEOUT_SECONDS = 3.0


_deferred = threading.local()


@contextmanager
def events_batched():
    """Inside this block (in a transaction), events are written together when it ends:
    one INSERT for all of them, in the order they were published (a batch of webhook
    deliveries publishes hundreds). Events published in a block that raises are dropped
    with it."""
    if getattr(_deferred, "events", None) is not None:
        yield  # already batching: the outer block writes them
        return
    _deferred.events = []
    frames: list = []
    in_transaction = transaction.get_connection().in_atomic_block
    if in_transaction:
        # Registered first, so the screens are told before any other after-commit work
        # of the batch (a print task enqueued per ticket commits on its own).
        transaction.on_commit(lambda: frames and events_push(frames))
    try:
        yield
        events = _deferred.events
    finally:
        _deferred.events = None
    if events:
        frames.extend(_write(events, push=not in_transaction))


def events_mark() -> int:
    """Where the batch stands now (0 outside `events_batched()`)."""
    batch = getattr(_deferred, "events", None)
    return len(batch) if batch is not None else 0


def events_discard_after(mark: int) -> None:
    """Drop what was published since `mark`: the savepoint it was published in rolled
    back (outside `events_batched()` the rollback took the events with it already)."""
    batch = getattr(_deferred, "events", None)
    if batch is not None:
        del batch[mark:]


def _write(events: list, *, push: bool = True) -> list:
    """Insert `events` and (with `push`) push them once the transaction commits; their
    frames."""
    # One INSERT for every event (PostgreSQL and SQLite return the ids); bulk_create wraps
    # itself in a transaction when the caller holds none.
    Event.objects.bulk_create(events)
    frames = [(event.audience, event.as_frame()) for event in events]
    if push:
        transaction.on_commit(lambda: events_push(frames))
    for event in events:
        logger.debug("event %s %s -> %s", event.id, event.type, event.audience)
    return frames


def event_publish(*, audience: str | Iterable[str], type: str, payload: dict | None = None):
    """Append one event per audience; push them once the surrounding transaction commits.

    Raises InvalidAudience for a malformed audience and NotificationError for a payload
    that is not a JSON object; nothing is written then. Inside `events_batched()` the
    events get their ids when the block ends.
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
    events = [Event(audience=name, type=type, payload=data, created_at=now) for name in audiences]
    batch = getattr(_deferred, "events", None)
    if batch is not None:
        batch.extend(events)
    else:
        _write(events)
    return events


class _PushLoop:
    """One event loop per process, in a daemon thread, for pushes from sync code.

    `async_to_sync` would start an event loop per call, and a channel layer on Redis opens
    its connections per loop: every push would connect anew. This loop keeps them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if self._loop is None or not alive or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="event-push", daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()
            return self._loop

    def run(self, coroutine, timeout: float) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from the channel layer within {timeout} s") from None


_push_loop = _PushLoop()


def push_message(frame: dict) -> dict:
    """The channel-layer message that carries one frame to a group. The frame goes encoded
    once here, so a hundred screens on one server do not each encode it again."""
    return {"type": PUSH_MESSAGE_TYPE, "frame": frame, "text": json.dumps(frame)}


def events_push(frames: list[tuple[str, dict]]) -> None:
    """Send already-committed frames to their audiences' groups; never raises.

    Caller must not hold database locks (this talks to the channel layer). Waits at most
    PUSH_TIMEOUT_SECONDS: a stalled Redis delays the caller that long, no longer.
    """
    if not frames:
        return
    layer = get_channel_layer()

    async def send_all() -> None:
        for audience, frame in frames:
            await layer.group_send(audience_group(audience), push_message(frame))

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # The in-process layer's queues belong to the server's loop: send from there.
            async_to_sync(send_all)()
        else:
            _push_loop.run(send_all(), PUSH_TIMEOUT_SECONDS)
    except Exception as exc:
        # Clients catch up from the log on their next resume.
        logger.warning(
            "event push failed (%s) for events %s",
            exc.__class__.__name__,
            ",".join(str(f["id"]) for _, f in frames),
        )


def events_prune(*, older_than: timedelta, batch_size: int = 5000, dry_run: bool = False) -> int:
    """Delete events older than `older_than`, in batches; returns how many went (with
    `dry_run`, how many would go, and nothing is deleted)."""
    cutoff = timezone.now() - older_than
    if dry_run:
        return Event.objects.filter(created_at__lt=cutoff).count()
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
