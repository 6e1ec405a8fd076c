"""Publishing: written in the caller's transaction, pushed only after it commits."""

import asyncio
import json
import threading
import time
from decimal import Decimal

import pytest
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command
from django.db import transaction

from notifications.audiences import audience_group
from notifications.errors import InvalidAudience, NotificationError
from notifications.models import Event
from notifications.services import event_publish

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class Listener:
    """A real channel on the layer, subscribed to one audience's group.

    It lives on one event loop of its own in a thread, because channels-redis binds its
    connections to the loop that first used them, and it receives all the time (as a
    consumer does): the pub/sub layer drops a channel whose receive is cancelled.
    """

    def __init__(self, audience: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.received: list[dict] = []
        self.channel = self._run(self.layer.new_channel())
        self._run(self.layer.group_add(audience_group(audience), self.channel))
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._receive()))

    async def _receive(self) -> None:
        while True:
            self.received.append(await self.layer.receive(self.channel))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def messages(self, wait: float = 0.5) -> list[dict]:
        """What arrived until `wait` seconds pass without a message."""
        seen = -1
        while seen != len(self.received):
            seen = len(self.received)
            time.sleep(wait)
        got, self.received[:] = list(self.received), []
        return got

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class Boom(Exception):
    pass


def test_rolled_back_publish_sends_nothing(redis_layer):
    listener = Listener("role:cashier")
    with pytest.raises(Boom), transaction.atomic():
        event_publish(audience="role:cashier", type="order.updated", payload={"id": 1})
        raise Boom
    assert listener.messages() == []
    assert not Event.objects.exists()


def test_rolled_back_savepoint_sends_nothing_but_outer_commit_does(redis_layer):
    listener = Listener("role:cashier")
    with transaction.atomic():
        event_publish(audience="role:cashier", type="kept", payload={})
        with pytest.raises(Boom), transaction.atomic():
            event_publish(audience="role:cashier", type="dropped", payload={})
            raise Boom
    frames = [m["frame"] for m in listener.messages()]
    assert [f["type"] for f in frames] == ["kept"]
    assert list(Event.objects.values_list("type", flat=True)) == ["kept"]


def test_committed_publish_sends_exactly_once_after_commit(redis_layer):
    listener = Listener("role:cashier")
    with transaction.atomic():
        (event,) = event_publish(
            audience="role:cashier", type="payment.confirmed", payload={"amount": Decimal("9.90")}
        )
        # Nothing leaves before the commit.
        assert listener.messages(wait=0.2) == []
    messages = listener.messages()
    assert len(messages) == 1
    frame = messages[0]["frame"]
    assert frame == json.loads(json.dumps(frame))
    assert frame["id"] == event.id
    assert frame["type"] == "payment.confirmed"
    assert frame["payload"] == {"amount": "9.90"}


def test_publish_to_several_audiences_writes_one_row_each(redis_layer):
    cashiers, waiters = Listener("role:cashier"), Listener("role:waiter")
    events = event_publish(audience=["role:cashier", "role:waiter"], type="order.updated")
    assert [e.audience for e in events] == ["role:cashier", "role:waiter"]
    assert len(cashiers.messages()) == 1
    assert len(waiters.messages()) == 1


@pytest.mark.parametrize(
    "audience",
    ["role:admin", "user:abc", "users:1", "display:has space", "", "payment:" + "x" * 80],
)
def test_malformed_audience_is_refused_and_nothing_written(audience):
    with pytest.raises(InvalidAudience):
        event_publish(audience=["role:cashier", audience], type="x", payload={})
    assert not Event.objects.exists()


def test_payload_must_be_an_object():
    with pytest.raises(NotificationError):
        event_publish(audience="role:cashier", type="x", payload=[1, 2])
    assert not Event.objects.exists()


def test_push_failure_does_not_break_the_commit(settings):
    """The channel layer down: the event stays in the log for resume, the caller is fine."""
    from tests.conftest import _reset_channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 2}]
            },
        }
    }
    _reset_channel_layers()
    try:
        (event,) = event_publish(audience="role:staff", type="x", payload={})
    finally:
        _reset_channel_layers()
    assert Event.objects.filter(pk=event.pk).exists()


def test_notify_command_publishes(redis_layer, capsys):
    listener = Listener("display:lobby")
    call_command(
        "notify",
        "--audience",
        "display:lobby",
        "--type",
        "staff.notice",
        "--data",
        '{"text": "Olá, ñandú"}',
    )
    (message,) = listener.messages()
    assert message["frame"]["payload"] == {"text": "Olá, ñandú"}
    assert "published event" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["--audience", "role:cashier", "--type", "x", "--data", "{nope"],
        ["--audience", "role:cashier", "--type", "x", "--data", "[1]"],
        ["--audience", "role:nobody", "--type", "x"],
    ],
)
def test_notify_command_rejects_bad_input(args):
    with pytest.raises(CommandError):
        call_command("notify", *args)
    assert not Event.objects.exists()


def test_worker_task_publishes_from_another_process(redis_layer, tmp_path):
    """The worker (a separate process) publishes; a listener here receives it via Redis."""
    import os
    import subprocess
    import sys

    from django.conf import settings as dj_settings

    from notifications.tasks import event_publish_task

    listener = Listener("role:kitchen")
    result = event_publish_task.enqueue(
        audience=["role:kitchen"], type="order.updated", payload={"id": 7}
    )
    env = dict(
        os.environ,
        REDIS_URL=os.environ["REDIS_URL"],
        CHANNELS_PREFIX=dj_settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
    )
    env["DATABASE_URL"] = _database_url()
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--batch",
            "--no-reload",
            "-v0",
            "--no-startup-delay",
        ],
        check=True,
        env=env,
        timeout=60,
    )
    result.refresh()
    assert result.status.name == "SUCCESSFUL"
    (message,) = listener.messages(wait=1)
    assert message["frame"]["payload"] == {"id": 7}


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
