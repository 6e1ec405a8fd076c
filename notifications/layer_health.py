"""Whether this process's channel layer answers, as its WebSocket connections found it.

A connection that cannot join its groups (Redis is down) serves its screen from the event
log and waits for the layer to come back. Rather than every waiting connection knocking on
the layer — and, with channels-redis's pub/sub layer, leaving a half-made channel behind
at each failed `new_channel()` — the connections of one event loop share one view: a
failure marks the layer down, and while it is down one probe at most every PROBE_INTERVAL
seconds (a `group_send` to a group nobody joins) finds out whether it is back.

A connection that ends leaves the layer with `channel_forget`. channels-redis's pub/sub
layer forgets a channel (its queue, its Redis subscription) only when a pending
`receive()` on it is cancelled, and not at all when Redis fails that moment: the
subscription then comes back with the next reconnection, for the life of the process. So
the channel is removed here, whatever its reader was doing, and removed again once the
layer answers if Redis failed the first time.
"""

import asyncio
import logging
import time
import weakref

from channels_redis.pubsub import RedisPubSubChannelLayer

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


# Removals under way, held here so that they outlive the connection that started them.
_forgetting: set[asyncio.Task] = set()


def channel_forget(
    layer, *, channel: "str | asyncio.Future[str]", groups: list[str]
) -> asyncio.Future:
    """Take a connection's channel out of `layer`: out of `groups` and, on the pub/sub
    layer, out of this process and its Redis subscription. `channel` may be a channel
    still being made (the future of its name): it is removed once made.

    The removal runs in a task of its own, which the end of the connection does not
    interrupt, and tries again whenever the layer is found answering until it succeeds.
    Returns a future done when its first attempt has ended."""
    tried = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(_forget(layer, channel, groups, tried))
    _forgetting.add(task)
    task.add_done_callback(_forgetting.discard)
    task.add_done_callback(lambda _task: tried.done() or tried.set_result(None))
    return tried


async def _forget(layer, channel, groups: list[str], tried: asyncio.Future) -> None:
    if not isinstance(channel, str):
        try:
            channel = await channel
        except Exception:
            return  # never made; what a failed new_channel() leaves is described above
    health = layer_health()
    while True:
        try:
            async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                await _remove(layer, channel, groups)
            return
        except Exception as exc:
            health.mark_down(exc)
        finally:
            if not tried.done():
                tried.set_result(None)
        while not await health.answers(layer):
            await asyncio.sleep(PROBE_INTERVAL)


async def _remove(layer, channel: str, groups: list[str]) -> None:
    """Remove `channel` and its memberships; safe to repeat after a partial failure."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        for group in groups:
            await layer.group_discard(group, channel)
        return
    # What RedisPubSubLoopLayer.receive() and group_discard() do, for a channel whose
    # reader may never have called receive(): first what this process holds (no message
    # reaches the channel past this point), then the Redis subscriptions nobody needs.
    local = layer._get_layer()
    local.channels.pop(channel, None)
    names = [channel]
    for group in groups:
        name = local._get_group_channel_name(group)
        members = local.groups.get(name)
        if members is not None:
            members.discard(channel)
            if members:
                continue
            del local.groups[name]
        names.append(name)
    for name in names:
        # A group another connection has joined since keeps its subscription. This check
        # and the shard's lock queue come in one step: a later join subscribes after us.
        if name not in local.groups:
            await _unsubscribe(local._get_shard(name), name)


async def _unsubscribe(shard, name: str) -> None:
    await shard.unsubscribe(name)
    # redis-py forgets a subscription when Redis confirms its end, and subscribes again
    # at each reconnection to what it has not forgotten: with the connection lost before
    # that confirmation (the usual case when Redis goes away), the subscription would be
    # back for good. Here either the UNSUBSCRIBE went through or the connection that held
    # the subscription is gone. Nothing runs between the shard's lock being released and
    # these lines, so a subscription made after ours (a group joined again) is kept.
    if shard._pubsub is not None:
        for key in (name, name.encode()):
            shard._pubsub.channels.pop(key, None)
