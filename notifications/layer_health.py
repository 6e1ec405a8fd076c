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
layer answers if Redis failed the first time — for FORGET_GIVE_UP_SECONDS at most, after
which this process lets go of the channel without Redis. A failure Redis did not cause is
not retried and does not mark the layer down. The removal works with channels-redis's
private internals (requirements.txt pins the version they were checked against); without
them it falls back to the public `group_discard`.
"""

import asyncio
import functools
import logging
import time
import weakref

from channels_redis.pubsub import RedisPubSubChannelLayer
from redis.exceptions import RedisError

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

# What a removal retries: Redis away, refusing, resetting or too slow to answer. Anything
# else is a fault of the removal itself (or of the layer's version): retrying it would
# fail the same way, and it says nothing about whether the layer answers.
LAYER_FAILURES = (RedisError, OSError, asyncio.TimeoutError)
# How long a removal keeps trying (seconds) — waiting for the channel to be made, or for
# the layer to answer again. Past it, what this process holds of the channel is dropped
# without telling Redis, whose subscriptions then end with the connection that held them.
FORGET_GIVE_UP_SECONDS = 600.0

# Warnings this process has given already: a fault that every closed connection meets is
# told once, not once per connection.
_warned: set[str] = set()


def _warn_once(key: str, message: str, *args) -> None:
    if key in _warned:
        logger.debug(message, *args)
        return
    _warned.add(key)
    logger.warning(message, *args)


def channel_forget(
    layer, *, channel: "str | asyncio.Future[str]", groups: list[str]
) -> asyncio.Future:
    """Take a connection's channel out of `layer`: out of `groups` and, on the pub/sub
    layer, out of this process and its Redis subscription. `channel` may be a channel
    still being made (the future of its name): it is removed once made.

    The removal runs in a task of its own, which the end of the connection does not
    interrupt. It tries again, when the layer is found answering, only after Redis failed
    it; and for FORGET_GIVE_UP_SECONDS at most, after which this process lets go of the
    channel without Redis. Returns a future done when its first attempt has ended."""
    loop = asyncio.get_running_loop()
    tried = loop.create_future()
    deadline = loop.time() + FORGET_GIVE_UP_SECONDS
    task = asyncio.ensure_future(_forget(layer, channel, groups, tried, deadline))
    _forgetting.add(task)
    task.add_done_callback(_forgetting.discard)
    task.add_done_callback(lambda _task: tried.done() or tried.set_result(None))
    return tried


async def _forget(layer, channel, groups: list[str], tried: asyncio.Future, deadline: float):
    loop = asyncio.get_running_loop()
    if not isinstance(channel, str):
        making = channel
        # Waited for, never cancelled: a making interrupted halfway would leave the
        # channel subscribed under a name nobody knows.
        await asyncio.wait({making}, timeout=max(deadline - loop.time(), 0))
        if not making.done():
            _warn_once(
                "making",
                "a closed connection's channel was still being made after %.0f s: it is "
                "removed if its making ever ends",
                FORGET_GIVE_UP_SECONDS,
            )
            making.add_done_callback(functools.partial(_forget_when_made, layer, groups))
            return
        if making.cancelled() or making.exception() is not None:
            return  # never made; what a failed new_channel() leaves is described above
        channel = making.result()
    if isinstance(layer, RedisPubSubChannelLayer) and not _knows_internals(layer):
        await _discard_from_groups(layer, channel, groups)
        return
    health = layer_health()
    while True:
        try:
            async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                await _remove(layer, channel, groups)
            return
        except AttributeError as exc:
            # Not the channels-redis these internals were written against.
            await _discard_from_groups(layer, channel, groups, exc)
            return
        except LAYER_FAILURES as exc:
            health.mark_down(exc)
        except Exception as exc:
            _warn_once(
                f"error:{exc.__class__.__name__}",
                "removing a closed connection's channel from the channel layer failed "
                "(%s); it is not tried again",
                exc.__class__.__name__,
            )
            return
        finally:
            if not tried.done():
                tried.set_result(None)
        while loop.time() < deadline and not await health.answers(layer):
            await asyncio.sleep(min(PROBE_INTERVAL, max(deadline - loop.time(), 0)))
        if loop.time() >= deadline:
            _let_go(layer, channel, groups)
            return


def _forget_when_made(layer, groups: list[str], making: asyncio.Future) -> None:
    if not making.cancelled() and making.exception() is None:
        channel_forget(layer, channel=making.result(), groups=groups)


async def _remove(layer, channel: str, groups: list[str]) -> None:
    """Remove `channel` and its memberships; safe to repeat after a partial failure.
    Raises AttributeError when the pub/sub layer's internals are not the ones known."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        for group in groups:
            await layer.group_discard(group, channel)
        return
    # What RedisPubSubLoopLayer.receive() and group_discard() do, for a channel whose
    # reader may never have called receive(): first what this process holds (no message
    # reaches the channel past this point), then the Redis subscriptions nobody needs.
    local = layer._get_layer()
    for name in _take_out(local, channel, groups):
        # A group another connection has joined since keeps its subscription. This check
        # and the shard's lock queue come in one step: a later join subscribes after us.
        if name not in local.groups:
            await _unsubscribe(local._get_shard(name), name)


def _knows_internals(layer: RedisPubSubChannelLayer) -> bool:
    """Whether the pub/sub layer has the internals the removal works with. They are
    channels-redis's private parts (checked against the version pinned in
    requirements.txt): another version may rename them."""
    # On the class: the layer's __getattr__ would look a missing name up through
    # _get_layer() itself.
    if not callable(getattr(type(layer), "_get_layer", None)):
        return False
    local = layer._get_layer()
    if not all(
        hasattr(local, name)
        for name in ("channels", "groups", "_shards", "_get_group_channel_name", "_get_shard")
    ):
        return False
    return all(
        hasattr(shard, name)
        for shard in local._shards
        for name in ("_pubsub", "_subscribed_to", "unsubscribe")
    )


def _take_out(local, channel: str, groups: list[str]) -> list[str]:
    """Take `channel` out of what the loop's pub/sub layer holds in this process; the
    names whose Redis subscription nobody here needs any more."""
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
    return names


async def _unsubscribe(shard, name: str) -> None:
    await shard.unsubscribe(name)
    # redis-py forgets a subscription when Redis confirms its end, and subscribes again
    # at each reconnection to what it has not forgotten: with the connection lost before
    # that confirmation (the usual case when Redis goes away), the subscription would be
    # back for good. Here either the UNSUBSCRIBE went through or the connection that held
    # the subscription is gone. Nothing runs between the shard's lock being released and
    # these lines, so a subscription made after ours (a group joined again) is kept.
    _forget_subscription(shard, name)


def _forget_subscription(shard, name: str) -> None:
    if shard._pubsub is not None:
        for key in (name, name.encode()):
            shard._pubsub.channels.pop(key, None)


def _let_go(layer, channel: str, groups: list[str]) -> None:
    """Drop what this process holds of `channel` without Redis, which did not answer in
    FORGET_GIVE_UP_SECONDS: no message reaches the channel, and redis-py does not
    subscribe it again when it reconnects. Redis ends the subscriptions with the
    connection that held them."""
    _warn_once(
        "give-up",
        "Redis did not let closed connections' channels be removed for %.0f s: they are "
        "dropped from this process without Redis",
        FORGET_GIVE_UP_SECONDS,
    )
    if not isinstance(layer, RedisPubSubChannelLayer):
        return  # holds nothing of a connection in this process
    try:
        local = layer._get_layer()
        for name in _take_out(local, channel, groups):
            # Synchronous from here on: nobody can join the group between check and drop.
            if name not in local.groups:
                shard = local._get_shard(name)
                shard._subscribed_to.discard(name)
                _forget_subscription(shard, name)
    except AttributeError:
        _warn_precise_cleanup_unavailable()


async def _discard_from_groups(
    layer, channel: str, groups: list[str], exc: BaseException | None = None
) -> None:
    """The public API's removal, tried once: the channel leaves its groups; its own queue
    and subscription stay until the layer drops them (on the pub/sub layer, when a
    reader's receive() is cancelled)."""
    _warn_precise_cleanup_unavailable(exc)
    try:
        async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
            for group in groups:
                await layer.group_discard(group, channel)
    except Exception as failure:
        logger.debug(
            "leaving the groups of a closed connection's channel failed (%s)",
            failure.__class__.__name__,
        )


def _warn_precise_cleanup_unavailable(exc: BaseException | None = None) -> None:
    _warn_once(
        "unavailable",
        "this channels-redis does not have the internals Confirma removes closed "
        "connections' channels with%s: their channels only leave their groups, and may "
        "stay subscribed in Redis for the life of this process (pin channels-redis to the "
        "version in requirements.txt)",
        f" ({exc.__class__.__name__})" if exc is not None else "",
    )
