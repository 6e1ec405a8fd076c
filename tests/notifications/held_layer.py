"""channels-redis's pub/sub layer, unchanged but for two points where a test can hold it.

- `hold_new_channel`: `new_channel()` makes the channel for real (queue and Redis
  subscription), then waits for `release` before it returns the name — a Redis slow to
  answer, as seen from the caller;
- `hold_receive`: `receive()` waits for `release` before it reaches the layer's own
  receive — a reader that has not been scheduled yet.

Every channel made is recorded in `made`; `entered` is set when a hold is reached.
"""

import asyncio

from channels_redis.pubsub import RedisPubSubChannelLayer


class HeldPubSubLayer(RedisPubSubChannelLayer):
    hold_new_channel = False
    hold_receive = False
    made: list[str] = []
    entered: asyncio.Event
    release: asyncio.Event

    @classmethod
    def reset(cls, *, hold_new_channel: bool = False, hold_receive: bool = False) -> None:
        cls.hold_new_channel = hold_new_channel
        cls.hold_receive = hold_receive
        cls.made = []
        cls.entered = asyncio.Event()
        cls.release = asyncio.Event()

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
