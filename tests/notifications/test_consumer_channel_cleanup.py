"""A closed /ws/events/ connection leaves nothing behind in the channel layer.

channels-redis's pub/sub layer forgets a channel only when a pending `receive()` on it is
cancelled. These tests close connections at the moments when that does not happen — the
channel still being made, made but never read, Redis failing as it is removed — and then
look at what the layer holds in this process and at `PUBSUB CHANNELS` on a redis-server
of the test's own (tests/faults/harness.py), killed and started again by its pid.

The layer is channels-redis's own, through tests/notifications/held_layer.py, which only
holds `new_channel()` or `receive()` at the point a test asks for.
"""

import asyncio
import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests.conftest import _reset_channel_layers
from tests.factories import UserFactory
from tests.faults.harness import RedisServer
from tests.notifications.held_layer import HeldPubSubLayer
from tests.notifications.wsclient import receive_frames, ws_connect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

make_user = database_sync_to_async(UserFactory)


@pytest.fixture
def held_layer(settings, tmp_path):
    server = RedisServer(tmp_path)
    prefix = f"confirma-test-{uuid.uuid4().hex[:10]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "tests.notifications.held_layer.HeldPubSubLayer",
            "CONFIG": {
                "hosts": [
                    {"address": server.url, "socket_connect_timeout": 2, "socket_timeout": 5}
                ],
                "prefix": prefix,
            },
        }
    }
    settings.EVENTS_HEARTBEAT_SECONDS = 120
    settings.EVENTS_DEGRADED_POLL_SECONDS = 0.3
    HeldPubSubLayer.reset()
    _reset_channel_layers()
    server.prefix = prefix
    yield server
    HeldPubSubLayer.release.set()
    _reset_channel_layers()
    server.close()


def _held_in_process(channel: str) -> list[str]:
    """What this process's layer still holds of `channel`, and every subscription it still
    keeps (or would renew when it reconnects): the test's connection was the only one."""
    local = get_channel_layer()._get_layer()
    held = ["its queue"] if channel in local.channels else []
    held += [
        f"membership of {name}" for name, members in local.groups.items() if channel in members
    ]
    for shard in local._shards:
        held += [f"subscription to {name}" for name in shard._subscribed_to]
        if shard._pubsub is not None:
            held += [f"subscription to renew: {name!r}" for name in shard._pubsub.channels]
    return held


def _redis_subscriptions(server) -> list[str]:
    client = redis.Redis.from_url(server.url)
    try:
        return sorted(name.decode() for name in client.pubsub_channels(f"{server.prefix}*"))
    finally:
        client.close()


async def _assert_left_nothing(server, channel: str, *, timeout: float) -> None:
    """Within `timeout`, neither the process nor Redis holds the channel or its groups."""
    deadline = time.monotonic() + timeout
    while True:
        held = _held_in_process(channel)
        subscriptions = await asyncio.to_thread(_redis_subscriptions, server)
        if not held and not subscriptions:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{channel} left behind: {held}; Redis still has {subscriptions}")
        await asyncio.sleep(0.1)


async def _open_degraded(server, user):
    """A connection opened while Redis is down, then Redis back: it is about to rejoin."""
    await asyncio.to_thread(server.kill)
    ws, connected, code = await ws_connect(user=user)
    assert connected, f"refused with {code}"
    (degraded,) = await receive_frames(ws, 1)
    assert (degraded["type"], degraded["state"]) == ("live", "degraded")
    await asyncio.to_thread(server.start)
    return ws


@pytest.mark.parametrize("made", ["while it closes", "after it closed"])
async def test_a_channel_still_being_made_when_the_connection_closes_is_removed(held_layer, made):
    server = held_layer
    HeldPubSubLayer.reset(hold_new_channel=True)
    cashier = await make_user(roles=["cashier"])
    ws = await _open_degraded(server, cashier)
    # The rejoin has made the channel at the layer and waits for new_channel() to return.
    await asyncio.wait_for(HeldPubSubLayer.entered.wait(), timeout=10)
    (channel,) = HeldPubSubLayer.made
    assert channel in await asyncio.to_thread(_redis_subscriptions, server)

    if made == "while it closes":
        closing = asyncio.ensure_future(ws.disconnect(timeout=5))
        await asyncio.sleep(0.3)
        HeldPubSubLayer.release.set()
        await closing
    else:
        await ws.disconnect(timeout=5)
        HeldPubSubLayer.release.set()

    await _assert_left_nothing(server, channel, timeout=3)


async def test_a_channel_made_but_never_read_is_removed_when_the_connection_closes(held_layer):
    server = held_layer
    HeldPubSubLayer.reset(hold_receive=True)
    cashier = await make_user(roles=["cashier"])
    ws, connected, code = await ws_connect(user=cashier)
    assert connected, f"refused with {code}"
    # Joined, and its reader has not reached the layer's receive() yet.
    await asyncio.wait_for(HeldPubSubLayer.entered.wait(), timeout=5)
    (channel,) = HeldPubSubLayer.made
    assert {channel, f"{server.prefix}__group__events.role.cashier"} <= set(
        await asyncio.to_thread(_redis_subscriptions, server)
    )

    await ws.disconnect(timeout=5)

    await _assert_left_nothing(server, channel, timeout=3)


async def test_a_channel_closed_while_redis_is_down_is_removed_once_redis_is_back(held_layer):
    server = held_layer
    cashier = await make_user(roles=["cashier"])
    ws, connected, code = await ws_connect(user=cashier)
    assert connected, f"refused with {code}"
    (channel,) = HeldPubSubLayer.made
    assert channel in await asyncio.to_thread(_redis_subscriptions, server)

    await asyncio.to_thread(server.kill)
    await ws.disconnect(timeout=5)
    # Redis cannot be told; the layer would subscribe the channel again when it
    # reconnects, and keep it for as long as the process lives.
    await asyncio.to_thread(server.start)

    await _assert_left_nothing(server, channel, timeout=15)
    # A new connection joins once the layer answers again; the old channel stays gone.
    ws, connected, _code = await ws_connect(user=cashier)
    assert connected
    deadline = time.monotonic() + 10
    while True:
        subscriptions = await asyncio.to_thread(_redis_subscriptions, server)
        if HeldPubSubLayer.made[-1] != channel and HeldPubSubLayer.made[-1] in subscriptions:
            break
        assert time.monotonic() < deadline, "the new connection never joined"
        await asyncio.sleep(0.1)
    assert channel not in subscriptions
    await ws.disconnect(timeout=5)
