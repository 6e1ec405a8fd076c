"""A closed /ws/events/ connection leaves nothing behind in the channel layer.

channels-redis's pub/sub layer forgets a channel only when a pending `receive()` on it is
cancelled. These tests close connections at the moments when that does not happen — the
channel still being made, made but never read, Redis failing as it is removed — and then
look at what the layer holds in this process and at `PUBSUB CHANNELS` on a redis-server
of the test's own (tests/faults/harness.py), killed and started again by its pid.

The layer is channels-redis's own, through tests/notifications/held_layer.py, which only
holds `new_channel()` or `receive()` at the point a test asks for, or breaks or renames
the internals the removal works with.

A removal is bounded: a fault Redis has no part in is not retried (nor taken for the
layer being down), Redis away for good or a channel whose making never ends are given up
after FORGET_GIVE_UP_SECONDS (shortened here), and without the internals it knows the
removal falls back to the public API once.
"""

import asyncio
import logging
import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from notifications import layer_health
from tests.conftest import _reset_channel_layers
from tests.factories import UserFactory
from tests.faults.harness import RedisServer
from tests.notifications.held_layer import HeldPubSubLayer
from tests.notifications.wsclient import receive_frames, ws_connect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

make_user = database_sync_to_async(UserFactory)


@pytest.fixture
def held_layer(settings, tmp_path, monkeypatch):
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
    monkeypatch.setattr(layer_health, "_warned", set())
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


async def _removals_end(within: float) -> None:
    """Within `within` seconds, no removal of a channel is still running on this loop."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + within
    while True:
        running = [
            task for task in layer_health._forgetting if task.get_loop() is loop and not task.done()
        ]
        if not running:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(running)} removal(s) still running after {within} s")
        await asyncio.sleep(0.05)


def _warnings(caplog, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and text in record.getMessage()
    ]


async def test_a_removal_failing_without_redis_at_fault_stops_and_leaves_the_layer_up(
    held_layer, caplog
):
    HeldPubSubLayer.reset(break_channel_map=True)
    caplog.set_level(logging.DEBUG, logger="notifications.layer_health")
    cashier = await make_user(roles=["cashier"])
    for _connection in range(2):
        ws, connected, code = await ws_connect(user=cashier)
        assert connected, f"refused with {code}"
        await ws.disconnect(timeout=5)

        await _removals_end(within=2)
        assert layer_health.layer_health().up

    assert not _warnings(caplog, "unreachable"), "the layer was taken for down"
    (warning,) = _warnings(caplog, "removing a closed connection's channel")
    assert "RuntimeError" in warning
    # A new connection still joins at once: nobody put the layer in degraded mode.
    ws, connected, _code = await ws_connect(user=cashier)
    assert connected
    assert HeldPubSubLayer.made[-1] in await asyncio.to_thread(_redis_subscriptions, held_layer)
    await ws.disconnect(timeout=5)


async def test_a_removal_redis_never_lets_happen_is_given_up_and_dropped_locally(
    held_layer, monkeypatch
):
    server = held_layer
    monkeypatch.setattr(layer_health, "FORGET_GIVE_UP_SECONDS", 2.0)
    cashier = await make_user(roles=["cashier"])
    ws, connected, code = await ws_connect(user=cashier)
    assert connected, f"refused with {code}"
    (channel,) = HeldPubSubLayer.made

    await asyncio.to_thread(server.kill)
    await ws.disconnect(timeout=5)

    # The bound, one attempt's timeout and one probe's timeout at most.
    await _removals_end(within=2.0 + 2 * layer_health.LAYER_TIMEOUT_SECONDS + 1)
    assert _held_in_process(channel) == []

    # Back, Redis is not asked for the old channel again, and the group it left is
    # subscribed again by the next connection to join it.
    await asyncio.to_thread(server.start)
    ws, connected, _code = await ws_connect(user=cashier)
    assert connected
    group = f"{server.prefix}__group__events.role.cashier"
    deadline = time.monotonic() + 10
    while True:
        subscriptions = await asyncio.to_thread(_redis_subscriptions, server)
        if {HeldPubSubLayer.made[-1], group} <= set(subscriptions):
            break
        assert time.monotonic() < deadline, f"the new connection never joined: {subscriptions}"
        await asyncio.sleep(0.1)
    assert channel not in subscriptions
    await ws.disconnect(timeout=5)


async def test_a_removal_waiting_for_a_channel_whose_making_hangs_is_bounded(
    held_layer, monkeypatch
):
    server = held_layer
    monkeypatch.setattr(layer_health, "FORGET_GIVE_UP_SECONDS", 1.5)
    HeldPubSubLayer.reset(hold_new_channel=True)
    cashier = await make_user(roles=["cashier"])
    ws = await _open_degraded(server, cashier)
    await asyncio.wait_for(HeldPubSubLayer.entered.wait(), timeout=10)
    (channel,) = HeldPubSubLayer.made

    await ws.disconnect(timeout=5)

    await _removals_end(within=1.5 + 1)
    # Should the making end after all, the channel it made is removed then.
    HeldPubSubLayer.release.set()
    await _assert_left_nothing(server, channel, timeout=3)


async def test_without_the_layer_internals_it_knows_the_removal_leaves_the_groups_once(
    held_layer, caplog
):
    server = held_layer
    HeldPubSubLayer.reset(rename_internals=True)
    caplog.set_level(logging.DEBUG, logger="notifications.layer_health")
    cashier = await make_user(roles=["cashier"])
    group = f"{server.prefix}__group__events.role.cashier"
    for _connection in range(2):
        ws, connected, code = await ws_connect(user=cashier)
        assert connected, f"refused with {code}"
        channel = HeldPubSubLayer.made[-1]
        assert channel in get_channel_layer()._get_layer().groups[group]

        await ws.disconnect(timeout=5)

        await _removals_end(within=2)
        assert group not in get_channel_layer()._get_layer().groups
        assert layer_health.layer_health().up

    assert len(_warnings(caplog, "does not have the internals")) == 1
    assert not _warnings(caplog, "unreachable")
