"""channels-redis's pub/sub layer, unchanged but for points where a test can hold or
alter it.

- `hold_new_channel`: `new_channel()` makes the channel for real (queue and Redis
  subscription), then waits for `release` before it returns the name — a Redis slow to
  answer, as seen from the caller;
- `hold_receive`: `receive()` waits for `release` before it reaches the layer's own
  receive — a reader that has not been scheduled yet;
- `break_channel_map`: the loop layer's map of channels raises on `pop()`, which only
  Confirma's removal of a closed connection's channel calls — a fault Redis has no part in;
- `rename_internals`: the loop layer names its groups' channels with a method of another
  name, as another channels-redis version might; the layer's own API works as before.

Every channel made is recorded in `made`; `entered` is set when a hold is reached.
"""

import asyncio

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer


class BrokenChannelMap(dict):
    def pop(self, *args):
        raise RuntimeError("the channel map is broken")


class RenamedLoopLayer(RedisPubSubLoopLayer):
    """The loop layer with `_get_group_channel_name` renamed `_group_channel`, as another
    channels-redis might name it. Its own group API works as before."""

    @property
    def _get_group_channel_name(self):
        raise AttributeError("_get_group_channel_name")

    def _group_channel(self, group):
        return f"{self.prefix}__group__{group}"

    async def group_add(self, group, channel):
        if channel not in self.channels:
            raise RuntimeError("You can only call group_add() on channels that exist in-process.")
        group_channel = self._group_channel(group)
        self.groups.setdefault(group_channel, set()).add(channel)
        await self._get_shard(group_channel).subscribe(group_channel)

    async def group_discard(self, group, channel):
        group_channel = self._group_channel(group)
        group_channels = self.groups.get(group_channel, set())
        if channel not in group_channels:
            return
        group_channels.remove(channel)
        if not group_channels:
            del self.groups[group_channel]
            await self._get_shard(group_channel).unsubscribe(group_channel)

    async def group_send(self, group, message):
        group_channel = self._group_channel(group)
        await self._get_shard(group_channel).publish(
            group_channel, self.channel_layer.serialize(message)
        )


class HeldPubSubLayer(RedisPubSubChannelLayer):
    hold_new_channel = False
    hold_receive = False
    break_channel_map = False
    rename_internals = False
    made: list[str] = []
    entered: asyncio.Event
    release: asyncio.Event

    @classmethod
    def reset(
        cls,
        *,
        hold_new_channel: bool = False,
        hold_receive: bool = False,
        break_channel_map: bool = False,
        rename_internals: bool = False,
    ) -> None:
        cls.hold_new_channel = hold_new_channel
        cls.hold_receive = hold_receive
        cls.break_channel_map = break_channel_map
        cls.rename_internals = rename_internals
        cls.made = []
        cls.entered = asyncio.Event()
        cls.release = asyncio.Event()

    def _get_layer(self):
        layer = super()._get_layer()
        if self.break_channel_map and not isinstance(layer.channels, BrokenChannelMap):
            layer.channels = BrokenChannelMap(layer.channels)
        if self.rename_internals and type(layer) is RedisPubSubLoopLayer:
            layer.__class__ = RenamedLoopLayer
        return layer

    async def new_channel(self, prefix="specific."):
        channel = await self._get_layer().new_channel(prefix)
        self.made.append(channel)
        if self.hold_new_channel:
            self.entered.set()
            await self.release.wait()
        return channel

    async def receive(self, channel):
        if self.hold_receive:
            self.entered.set()
            await self.release.wait()
        return await self._get_layer().receive(channel)
