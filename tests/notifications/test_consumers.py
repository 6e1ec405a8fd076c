"""The /ws/events/ consumer on the real Redis channel layer."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from notifications.audiences import audience_group
from notifications.services import PUSH_MESSAGE_TYPE, event_publish
from notifications.tokens import audience_token_create
from tests.factories import UserFactory
from tests.notifications.wsclient import receive_frames, ws_connect

# Delivery tests run on the real Redis layer. Tests of refused connections use the
# in-process layer: who may connect does not depend on the layer, and a refused
# connection's pending Redis read, cancelled at teardown, can stall up to the socket
# timeout with channels-redis on redis-py 8.
pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

publish = database_sync_to_async(event_publish)
make_user = database_sync_to_async(UserFactory)


async def test_user_never_receives_another_users_events(redis_layer):
    alice, bob = await make_user(), await make_user()
    ws_alice, ok_a, _ = await ws_connect(user=alice)
    ws_bob, ok_b, _ = await ws_connect(user=bob)
    assert ok_a and ok_b

    await publish(audience=f"user:{bob.pk}", type="wallet.updated", payload={"balance": "5"})
    await publish(audience=f"user:{alice.pk}", type="wallet.updated", payload={"balance": "9"})

    (frame,) = await receive_frames(ws_alice, 1)
    assert frame["type"] == "wallet.updated"
    assert frame["payload"] == {"balance": "9"}
    assert set(frame) == {"id", "type", "payload", "at"}
    (frame_b,) = await receive_frames(ws_bob, 1)
    assert frame_b["payload"] == {"balance": "5"}
    assert await ws_alice.receive_nothing(timeout=0.3)
    assert await ws_bob.receive_nothing(timeout=0.3)
    await ws_alice.disconnect()
    await ws_bob.disconnect()


async def test_waiter_never_receives_cashier_only_events(redis_layer):
    waiter = await make_user(roles=["waiter"])
    cashier = await make_user(roles=["cashier"])
    ws_waiter, _, _ = await ws_connect(user=waiter)
    ws_cashier, _, _ = await ws_connect(user=cashier)

    await publish(audience="role:cashier", type="payment.verification_pending", payload={"o": 1})
    await publish(audience="role:waiter", type="order.updated", payload={"o": 1})

    assert [f["type"] for f in await receive_frames(ws_cashier, 1)] == [
        "payment.verification_pending"
    ]
    assert [f["type"] for f in await receive_frames(ws_waiter, 1)] == ["order.updated"]
    assert await ws_waiter.receive_nothing(timeout=0.3)
    assert await ws_cashier.receive_nothing(timeout=0.3)
    await ws_waiter.disconnect()
    await ws_cashier.disconnect()


async def test_client_cannot_choose_its_audiences(redis_layer):
    """Query parameters naming audiences are ignored: only who you are counts."""
    waiter = await make_user(roles=["waiter"])
    ws, ok, _ = await ws_connect(user=waiter, token=None)
    assert ok
    await publish(audience="role:staff", type="alert.raised", payload={})
    assert await ws.receive_nothing(timeout=0.4)
    await ws.disconnect()


async def test_anonymous_without_token_is_refused(memory_layer):
    _, connected, code = await ws_connect()
    assert not connected
    assert code == 4401


async def test_foreign_origin_is_refused(memory_layer):
    user = await make_user()
    _, connected, _ = await ws_connect(user=user, origin=b"http://evil.example")
    assert not connected


@pytest.mark.parametrize("token", ["garbage", "", "a:b:c"])
async def test_bad_token_is_refused(memory_layer, token):
    _, connected, code = await ws_connect(token=token or "x")
    assert not connected
    assert code == 4401


async def test_expired_token_is_refused(memory_layer):
    token = audience_token_create(audiences=["display:lobby"], ttl_seconds=-1)
    _, connected, code = await ws_connect(token=token)
    assert not connected
    assert code == 4401


async def test_tampered_token_is_refused(memory_layer):
    token = audience_token_create(audiences=["display:lobby"])
    other = audience_token_create(audiences=["display:vault"])
    # The payload of one token with the signature of another.
    forged = other.split(":", 1)[0] + ":" + token.split(":", 1)[1]
    assert forged != token
    _, connected, _ = await ws_connect(token=forged)
    assert not connected


async def test_display_token_sees_its_board_only(redis_layer):
    token = audience_token_create(audiences=["display:lobby"])
    ws, connected, _ = await ws_connect(token=token)
    assert connected
    await publish(audience="display:hall", type="ticket.called", payload={"n": "B-001"})
    await publish(audience="display:lobby", type="ticket.called", payload={"n": "A-001"})
    (frame,) = await receive_frames(ws, 1)
    assert frame["payload"] == {"n": "A-001"}
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_resume_delivers_exactly_the_missed_events_in_order(redis_layer):
    user = await make_user()
    audience = f"user:{user.pk}"
    ws, _, _ = await ws_connect(user=user)
    first = (await publish(audience=audience, type="n", payload={"n": 0}))[0]
    (seen,) = await receive_frames(ws, 1)
    assert seen["id"] == first.id
    await ws.disconnect()

    missed = []
    for n in range(1, 6):
        missed.append((await publish(audience=audience, type="n", payload={"n": n}))[0].id)
    await publish(audience="role:cashier", type="other", payload={})

    ws2, connected, _ = await ws_connect(user=user, since=seen["id"])
    assert connected
    frames = await receive_frames(ws2, 5)
    assert [f["id"] for f in frames] == missed
    assert [f["payload"]["n"] for f in frames] == [1, 2, 3, 4, 5]
    # Live events still flow after the replay, once each.
    live = (await publish(audience=audience, type="n", payload={"n": 6}))[0]
    (frame,) = await receive_frames(ws2, 1)
    assert frame["id"] == live.id
    assert await ws2.receive_nothing(timeout=0.3)
    await ws2.disconnect()


async def test_too_far_behind_gets_resync(redis_layer, settings):
    settings.EVENTS_MAX_BACKLOG = 3
    user = await make_user()
    for n in range(5):
        await publish(audience=f"user:{user.pk}", type="n", payload={"n": n})
    ws, connected, _ = await ws_connect(user=user, since=0)
    assert connected
    frame = await ws.receive_json_from(timeout=3)
    assert frame["type"] == "resync"
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_bad_since_is_refused(memory_layer):
    user = await make_user()
    _, connected, code = await ws_connect(user=user, since="abc")
    assert not connected
    assert code == 4400


async def test_idle_connection_gets_heartbeats(redis_layer, settings):
    settings.EVENTS_HEARTBEAT_SECONDS = 0.2
    user = await make_user()
    ws, _, _ = await ws_connect(user=user)
    frame = await ws.receive_json_from(timeout=2)
    assert frame["type"] == "heartbeat"
    await ws.disconnect()


async def test_event_committed_late_below_the_resume_point_is_not_lost(redis_layer):
    """Ids are taken before commit: event A (lower id) may commit after B was delivered.
    A client that resumes saying which recent ids it has seen still gets A."""
    import threading

    from django.db import connection, transaction

    user = await make_user()
    audience = f"user:{user.pk}"
    published, release, done = threading.Event(), threading.Event(), threading.Event()
    slow_id = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                (event,) = event_publish(audience=audience, type="slow", payload={})
                slow_id["id"] = event.id
                published.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    ws, _, _ = await ws_connect(user=user)
    threading.Thread(target=slow_transaction, daemon=True).start()
    await asyncio.get_running_loop().run_in_executor(None, published.wait, 10)
    (fast,) = await publish(audience=audience, type="fast", payload={})
    assert fast.id > slow_id["id"]
    (frame,) = await receive_frames(ws, 1)
    assert frame["id"] == fast.id
    await ws.disconnect()

    release.set()  # A commits while the client is away
    await asyncio.get_running_loop().run_in_executor(None, done.wait, 10)

    ws2, connected, _ = await ws_connect(
        user=user, since=fast.id, seen=str(fast.id), floor=slow_id["id"] - 1
    )
    assert connected
    (late,) = await receive_frames(ws2, 1)
    assert (late["id"], late["type"]) == (slow_id["id"], "slow")
    assert await ws2.receive_nothing(timeout=0.3)
    await ws2.disconnect()


async def test_connection_is_closed_when_its_token_expires(redis_layer, settings):
    settings.EVENTS_HEARTBEAT_SECONDS = 0.2
    token = audience_token_create(audiences=["display:lobby"], ttl_seconds=1)
    ws, connected, _ = await ws_connect(token=token)
    assert connected
    while True:
        output = await ws.receive_output(timeout=4)
        if output["type"] == "websocket.close":
            break
    assert output["code"] == 4401


async def test_events_from_before_the_client_started_are_not_replayed(redis_layer):
    user = await make_user()
    audience = f"user:{user.pk}"
    (old,) = await publish(audience=audience, type="old", payload={})
    (first,) = await publish(audience=audience, type="first", payload={})
    # The page began listening after `old`; it saw `first`, then lost its connection.
    ws, connected, _ = await ws_connect(user=user, since=first.id, seen=str(first.id), floor=old.id)
    assert connected
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_a_lost_push_reaches_the_open_connection_at_the_next_heartbeat(redis_layer, settings):
    """The push of an event is lost (Redis away, say): the open connection reads it from
    the log at its next heartbeat, once; an event it was pushed is not sent again."""
    from notifications.models import Event

    settings.EVENTS_HEARTBEAT_SECONDS = 0.3
    user = await make_user()
    ws, _, _ = await ws_connect(user=user)
    pushed = (await publish(audience=f"user:{user.pk}", type="pushed", payload={}))[0]
    # Written to the log without any push, as when the push fails.
    lost = await database_sync_to_async(Event.objects.create)(
        audience=f"user:{user.pk}", type="lost", payload={}
    )
    frames = []
    while len([f for f in frames if f["type"] == "heartbeat"]) < 3:
        frames.append(await ws.receive_json_from(timeout=3))
    events = [f["id"] for f in frames if f["type"] != "heartbeat"]
    assert events == [pushed.id, lost.id]
    await ws.disconnect()


async def test_a_push_is_sent_while_the_process_sync_thread_is_busy(redis_layer):
    """A push needs no database: it must not wait for the process's one sync thread,
    which database reads (catch-up, connects) keep busy under load. Channels would run
    `close_old_connections` there before every message; the consumer skips it for pushes."""
    user = await make_user()
    ws, ok, _ = await ws_connect(user=user)
    assert ok
    busy = asyncio.ensure_future(sync_to_async(time.sleep)(2.5))
    await asyncio.sleep(0.1)
    frame = {"id": 10**12, "type": "direct", "payload": {}, "at": "2026-01-01T00:00:00+00:00"}
    await get_channel_layer().group_send(
        audience_group(f"user:{user.pk}"), {"type": PUSH_MESSAGE_TYPE, "frame": frame}
    )
    (received,) = await receive_frames(ws, 1, timeout=1.5)
    assert received == frame
    assert not busy.done()
    await busy
    await ws.disconnect()


async def test_a_push_goes_out_as_its_sender_encoded_it(redis_layer):
    """`events_push` encodes a frame once for every screen; the consumer sends that text
    as it is, through the server's own send (not re-encoded per connection)."""
    from notifications.services import push_message

    user = await make_user()
    ws, ok, _ = await ws_connect(user=user)
    assert ok
    frame = {"id": 10**12 + 1, "type": "direct", "payload": {"b": 1, "a": 2}, "at": "x"}
    message = push_message(frame)
    expected = '{"id": 1000000000001, "type": "direct", "payload": {"b": 1, "a": 2}, "at": "x"}'
    assert message["text"] == expected
    # A distinctive encoding (no spaces, keys sorted) shows which text reached the screen.
    message["text"] = '{"at":"x","id":1000000000001,"payload":{"a":2,"b":1},"type":"direct"}'
    await get_channel_layer().group_send(audience_group(f"user:{user.pk}"), message)
    text = await ws.receive_from(timeout=3)
    assert text == message["text"]
    # The same event id again (the log's catch-up, a relay) is not sent twice.
    await get_channel_layer().group_send(audience_group(f"user:{user.pk}"), push_message(frame))
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
