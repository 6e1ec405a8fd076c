"""The /ws/events/ consumer when its channel layer's Redis is down as the connection opens.

The real pub/sub layer on a redis-server of the test's own (tests/faults/harness.py),
SIGKILLed before the screen connects and started again later on the same port.
"""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from notifications.audiences import audience_group
from notifications.selectors import event_latest_id
from notifications.services import PUSH_MESSAGE_TYPE, event_publish
from tests.conftest import _reset_channel_layers
from tests.factories import UserFactory
from tests.faults.harness import RedisServer
from tests.notifications.wsclient import receive_frames, ws_connect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

publish = database_sync_to_async(event_publish)
make_user = database_sync_to_async(UserFactory)
latest_id = database_sync_to_async(event_latest_id)


@pytest.fixture
def own_redis_layer(settings, tmp_path):
    server = RedisServer(tmp_path)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": server.url, "socket_connect_timeout": 2, "socket_timeout": 5}
                ],
                "prefix": f"confirma-test-{uuid.uuid4().hex[:10]}",
            },
        }
    }
    # Nothing arrives by the heartbeat's catch-up in these tests.
    settings.EVENTS_HEARTBEAT_SECONDS = 120
    settings.EVENTS_DEGRADED_POLL_SECONDS = 0.3
    _reset_channel_layers()
    yield server
    _reset_channel_layers()
    server.close()


async def test_a_connection_opened_while_redis_is_down_is_served_from_the_log_then_pushed_to(
    own_redis_layer,
):
    redis = own_redis_layer
    cashier = await make_user(roles=["cashier"])
    since = await latest_id()
    await asyncio.to_thread(redis.kill)
    (missed,) = await publish(audience="role:cashier", type="order.updated", payload={"n": 1})

    ws, connected, code = await ws_connect(user=cashier, since=since)
    assert connected, f"refused with {code}"
    degraded, replayed = await receive_frames(ws, 2)
    assert (degraded["type"], degraded["state"]) == ("live", "degraded")
    assert replayed["id"] == missed.id

    # Pushes cannot come: the connection reads the log on its own.
    (during,) = await publish(audience="role:cashier", type="order.updated", payload={"n": 2})
    (frame,) = await receive_frames(ws, 1, timeout=3)
    assert frame["id"] == during.id

    await asyncio.to_thread(redis.start)
    (back,) = await receive_frames(ws, 1, timeout=10)
    assert (back["type"], back["state"]) == ("live", "ok")
    (live,) = await publish(audience="role:cashier", type="order.updated", payload={"n": 3})
    (frame,) = await receive_frames(ws, 1, timeout=2)
    assert frame["id"] == live.id
    # A frame that is in no log can only come through the group the connection rejoined.
    pushed_only = {"id": live.id + 10**9, "type": "order.updated", "payload": {}, "at": "now"}
    await get_channel_layer().group_send(
        audience_group("role:cashier"), {"type": PUSH_MESSAGE_TYPE, "frame": pushed_only}
    )
    (frame,) = await receive_frames(ws, 1, timeout=2)
    assert frame == pushed_only
    assert await ws.receive_nothing(timeout=0.8)  # nothing sent twice
    await ws.disconnect()
