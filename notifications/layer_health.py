"""Whether this process's channel layer answers, as its WebSocket connections found it.

A connection that cannot join its groups (Redis is down) serves its screen from the event
log and waits for the layer to come back. Rather than every waiting connection knocking on
the layer — and, with channels-redis's pub/sub layer, leaving a half-made channel behind
at each failed `new_channel()` — the connections of one event loop share one view: a
failure marks the layer down, and while it is down one probe at most every PROBE_INTERVAL
seconds (a `group_send` to a group nobody joins) finds out whether it is back.
"""

import asyncio
import logging
import time
import weakref

logger = logging.getLogger(__name__)

PROBE_GROUP = "events.probe"
PROBE_INTERVAL = 1.0
# The longest one probe, or one attempt to join groups, may take: a frozen Redis must not
# hold a connection's handshake or its degraded-mode loop longer than that.
LAYER_TIMEOUT_SECONDS = 3.0

_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LayerHealth]" = (
    weakref.WeakKeyDictionary()
)


class LayerHealth:
    def __init__(self) -> None:
        self.up = True
        self._next_probe = 0.0
        self._lock = asyncio.Lock()

    def mark_down(self, exc: BaseException) -> None:
        """Record that the layer failed a caller; probes start PROBE_INTERVAL from now."""
        if self.up:
            logger.warning(
                "channel layer unreachable (%s): new connections get no live pushes and "
                "are served from the event log until it answers",
                exc.__class__.__name__,
            )
        self.up = False
        self._next_probe = time.monotonic() + PROBE_INTERVAL

    async def answers(self, layer) -> bool:
        """True unless the layer is known to be down and a probe (if one is due) failed."""
        if self.up:
            return True
        if self._lock.locked():
            return False  # a probe is on its way: nobody waits for it
        async with self._lock:
            if self.up or time.monotonic() < self._next_probe:
                return self.up
            try:
                async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                    await layer.group_send(PROBE_GROUP, {"type": "events.probe"})
            except Exception:
                self._next_probe = time.monotonic() + PROBE_INTERVAL
                return False
            self.up = True
            logger.info("channel layer answers again: connections rejoin their groups")
            return True


def layer_health() -> LayerHealth:
    """The running event loop's view of the channel layer."""
    loop = asyncio.get_running_loop()
    health = _by_loop.get(loop)
    if health is None:
        health = _by_loop[loop] = LayerHealth()
    return health
