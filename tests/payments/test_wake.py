"""An idle webhook worker is woken the moment a delivery is stored — through Redis, or
PostgreSQL's NOTIFY without it — not when its idle time ends; a wake-up that cannot be
sent never costs the provider its answer."""

import gc
import logging
import threading
import time
import uuid

import pytest
import redis
from django.db import connection

from payments.management.commands.process_webhooks import work
from payments.models import WebhookDelivery
from payments.services.wake import PG_CHANNEL
from tests.conftest import redis_url
from tests.payments.test_deliveries import _session, _store

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

IDLE = 60.0  # far longer than the test waits: only a wake-up can make the worker look


def _wait(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def idle_worker(settings):
    settings.WEBHOOK_WORKER_IDLE_SECONDS = IDLE
    settings.WEBHOOK_WAKE_CHANNEL = f"confirma-test-{uuid.uuid4().hex[:8]}:deliveries"
    stop = threading.Event()

    def run():
        try:
            work(size=100, should_stop=stop.is_set)
        finally:
            connection.close()

    def start():
        thread = threading.Thread(target=run, name="idle-webhook-worker", daemon=True)
        thread.start()
        return thread

    threads = []
    yield lambda: threads.append(start())
    stop.set()
    # Only a wake-up ends its wait early: send one so that it sees `stop`.
    from payments.services.wake import deliveries_wake

    deliveries_wake()
    for thread in threads:
        thread.join(timeout=5)


def _processed(pk) -> bool:
    return WebhookDelivery.objects.filter(pk=pk, status="processed").exists()


@pytest.mark.redis
def test_a_stored_delivery_wakes_an_idle_worker_through_redis(
    client, kiosk_secret, settings, idle_worker, caplog
):
    settings.REDIS_URL = redis_url()
    caplog.set_level(logging.WARNING, logger="payments.services.wake")
    listener = redis.Redis.from_url(settings.REDIS_URL)
    channel = settings.WEBHOOK_WAKE_CHANNEL.encode()

    def subscribed() -> bool:
        return dict(listener.pubsub_numsub(channel)).get(channel) == 1

    idle_worker()
    _wait(subscribed, "the worker to listen")
    gc.collect()  # nothing the subscription needs may be left to the garbage collector
    # It stays subscribed (a dropped subscription would fall back to looking every
    # fraction of a second, which would also process the delivery, but not as woken).
    for _ in range(10):
        time.sleep(0.05)
        assert subscribed()

    delivery = _store(client, kiosk_secret, _session("wake-redis"))

    _wait(lambda: _processed(delivery), "the delivery to be processed")
    assert subscribed()
    assert not [r for r in caplog.records if "cannot listen" in r.getMessage()]


def test_without_redis_a_stored_delivery_wakes_an_idle_worker_through_postgresql(
    client, kiosk_secret, settings, idle_worker
):
    settings.REDIS_URL = ""

    def listening():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = %s",
                [f"LISTEN {PG_CHANNEL}"],
            )
            return cursor.fetchone()[0] == 1

    idle_worker()
    _wait(listening, "the worker to listen")
    time.sleep(0.3)

    delivery = _store(client, kiosk_secret, _session("wake-pg"))

    _wait(lambda: _processed(delivery), "the delivery to be processed")


def test_a_wake_up_that_cannot_be_sent_still_answers_and_stores(
    client, kiosk_secret, settings, caplog, free_tcp_port
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_tcp_port}/0"  # nothing listens there
    caplog.set_level(logging.WARNING, logger="payments.services.wake")
    from payments.services import wake

    wake._warned[0] = 0.0

    def warnings():
        return [r for r in caplog.records if "cannot wake" in r.getMessage()]

    first = _store(client, kiosk_secret, _session("wake-down-1"))
    _wait(lambda: len(warnings()) == 1, "the warning")  # from the waker thread
    second = _store(client, kiosk_secret, _session("wake-down-2"))
    third = _store(client, kiosk_secret, _session("wake-down-3"))

    stored = WebhookDelivery.objects.filter(pk__in=[first, second, third], status="received")
    assert stored.count() == 3
    time.sleep(0.5)  # the later wake-ups' attempts fail too (nothing listens there)
    assert len(warnings()) == 1  # said once, not per request


@pytest.mark.redis
def test_the_answer_does_not_wait_for_redis(client, kiosk_secret, settings, caplog, tmp_path):
    """A Redis that does not answer (frozen, as under a long pause) costs the intake
    nothing: the PUBLISH goes from the waker thread, which gives up after its socket
    timeout (0.5 s) and says so, after the provider has had its answer."""
    from payments.services import wake
    from tests.faults.harness import RedisServer

    server = RedisServer(tmp_path)
    try:
        settings.REDIS_URL = server.url
        caplog.set_level(logging.WARNING, logger="payments.services.wake")
        wake._warned[0] = 0.0
        _store(client, kiosk_secret, _session("wake-warm"))  # the client connects
        _wait(lambda: server.answers(), "redis")
        time.sleep(0.2)
        server.freeze()
        try:
            delivery = _store(client, kiosk_secret, _session("wake-frozen"))
            # Answered and stored before the wake-up even gave up: it was not waited for.
            assert not [r for r in caplog.records if "cannot wake" in r.getMessage()]
            assert WebhookDelivery.objects.filter(pk=delivery, status="received").exists()
            _wait(
                lambda: any("cannot wake" in r.getMessage() for r in caplog.records),
                "the waker thread to give up",
            )
        finally:
            server.thaw()
    finally:
        server.close()


@pytest.mark.redis
def test_a_worker_process_stays_subscribed_and_is_woken(client, kiosk_secret, settings):
    """`manage.py process_webhooks` as a process of its own, as deployed: subscribed for as
    long as it runs (not only for a moment), and woken by the intake at once."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    settings.REDIS_URL = redis_url()
    settings.WEBHOOK_WAKE_CHANNEL = f"confirma-test-{uuid.uuid4().hex[:8]}:deliveries"
    prefix = settings.WEBHOOK_WAKE_CHANNEL.rsplit(":", 1)[0]
    db = connection.settings_dict
    env = {
        **os.environ,
        "CONFIRMA_TESTING": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CHANNELS_PREFIX": prefix,
        "WEBHOOK_WORKER_IDLE_SECONDS": str(IDLE),
    }
    root = Path(__file__).resolve().parents[2]
    # The deliveries table held: the worker's first look waits, so what is measured is
    # that it subscribed before looking, and stays subscribed whatever it is doing.
    import psycopg

    hold = psycopg.connect(env["DATABASE_URL"])
    hold.execute("LOCK TABLE payments_webhookdelivery IN EXCLUSIVE MODE")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "process_webhooks", "-v0"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    listener = redis.Redis.from_url(settings.REDIS_URL)
    channel = settings.WEBHOOK_WAKE_CHANNEL.encode()

    def subscribed() -> bool:
        return dict(listener.pubsub_numsub(channel)).get(channel) == 1

    try:
        _wait(subscribed, "the worker to listen", timeout=30)
        for _ in range(20):  # a subscription dropped after start-up shows here
            time.sleep(0.05)
            assert subscribed()
        hold.commit()
        delivery = _store(client, kiosk_secret, _session("wake-process"))
        _wait(lambda: _processed(delivery), "the delivery to be processed")
        assert subscribed()
    finally:
        hold.close()
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
