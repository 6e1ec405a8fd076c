"""A per-process relay from the event log to the in-process channel layer.

With Redis every process publishes to the same layer. Without it (the embedded default)
the layer lives in one process, so events written by another process — the worker, a
management command — would never reach this process's connections. The relay polls the
log every EVENTS_POLL_INTERVAL seconds and forwards what it has not forwarded yet;
consumers drop what they already sent, so an event seen twice is delivered once.
"""

import asyncio
import logging
from collections import deque

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from notifications.audiences import audience_group
from notifications.selectors import event_latest_id, events_since_any
from notifications.services import push_message

logger = logging.getLogger(__name__)

# Ids are allocated before commit, so a lower id can become visible after a higher one;
# re-reading this far back catches such late commits.
LOOKBACK = 200

_relays: dict[int, "EventRelay"] = {}


class EventRelay:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.cursor: int | None = None
        self._seen: deque[int] = deque(maxlen=4 * LOOKBACK)
        self._seen_set: set[int] = set()

    def _remember(self, event_id: int) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(event_id)
        self._seen_set.add(event_id)

    async def poll_once(self) -> int:
        if self.cursor is None:
            # Start from now: what is already in the log was pushed by whoever wrote it.
            self.cursor = await database_sync_to_async(event_latest_id)()
            existing = await database_sync_to_async(events_since_any)(
                after=max(0, self.cursor - LOOKBACK)
            )
            for event in existing:
                self._remember(event.id)
            return 0
        events = await database_sync_to_async(events_since_any)(
            after=max(0, self.cursor - LOOKBACK)
        )
        layer = get_channel_layer()
        sent = 0
        for event in events:
            if event.id in self._seen_set:
                continue
            self._remember(event.id)
            self.cursor = max(self.cursor, event.id)
            await layer.group_send(
                audience_group(event.audience),
                push_message(event.as_frame()),
            )
            sent += 1
        return sent

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event relay poll failed")
            await asyncio.sleep(self.interval)


def relay_ensure_running() -> None:
    """Start this event loop's relay if polling is configured and it is not running."""
    interval = settings.EVENTS_POLL_INTERVAL
    if interval <= 0:
        return
    loop = asyncio.get_running_loop()
    key = id(loop)
    if key in _relays:
        return
    relay = EventRelay(interval)
    _relays[key] = relay
    task = loop.create_task(relay.run())
    task.add_done_callback(lambda _t: _relays.pop(key, None))
