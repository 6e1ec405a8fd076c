"""Waking the webhook workers the moment a delivery is stored.

The intake calls `deliveries_wake()` after its INSERT has committed (with Redis the PUBLISH
goes from a thread of the process, so the request never waits for it); a worker with nothing
to do waits on a `WakeListener`. With Redis (production) the wake-up is one PUBLISH on
WEBHOOK_WAKE_CHANNEL, which every worker on every node hears. Without Redis, on PostgreSQL,
it is a NOTIFY sent by the intake after its INSERT — not by a trigger inside the INSERT's
transaction: PostgreSQL commits transactions that NOTIFY one at a time, which would take
away the group commit the intake's INSERTs share. On SQLite (the demo) workers just look
often.

Best effort throughout: a lost wake-up costs at most WEBHOOK_WORKER_IDLE_SECONDS, the
time after which an idle worker looks anyway.
"""

import contextlib
import logging
import os
import socket
import threading
import time

import psycopg
import redis
from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

PG_CHANNEL = "confirma_deliveries"
LISTENER_NAME = "confirma-webhook-worker"
# How often a worker looks when it cannot be woken (Redis away, SQLite).
POLL_SECONDS = 0.2
_WARN_EVERY = 60.0

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_warned = [0.0]


def _redis() -> redis.Redis:
    """This process's publishing client (thread-safe: it keeps a pool of connections)."""
    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=0.5
            )
        return _clients[url]


def _warn(what: str, exc: Exception) -> None:
    now = time.monotonic()
    if now - _warned[0] >= _WARN_EVERY:  # an outage is said once a minute, not per request
        _warned[0] = now
        logger.warning("%s (%s); workers look every few seconds meanwhile", what, exc)


class _Waker:
    """Sends this process's Redis wake-ups from a thread of its own, so a webhook request
    never waits for Redis (its answer and its thread are the provider's). Rings that come
    while a PUBLISH is under way make one more PUBLISH after it, not one each: every
    delivery committed before a ring is followed by a PUBLISH sent after that ring."""

    def __init__(self) -> None:
        self._rung = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ring(self) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:  # first ring in this process (or after a fork): start it
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._rung = threading.Event()
                    self._thread = threading.Thread(
                        target=self._run, name="webhook-wake", daemon=True
                    )
                    self._pid = os.getpid()
                    self._thread.start()
        self._rung.set()

    def _run(self) -> None:
        while True:
            self._rung.wait()
            self._rung.clear()
            try:
                _redis().publish(settings.WEBHOOK_WAKE_CHANNEL, b"1")
            except redis.RedisError as exc:
                _warn("cannot wake the webhook workers through Redis", exc)
            except Exception:  # never let the thread die: the next ring needs it
                logger.exception("webhook wake-up failed")


_waker = _Waker()


def deliveries_wake() -> None:
    """Tell the webhook workers a delivery was committed (call after the commit). With
    Redis it returns at once: the PUBLISH goes from this process's waker thread."""
    if settings.REDIS_URL:
        _waker.ring()
        return
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [PG_CHANNEL])
        except DatabaseError as exc:
            _warn("cannot wake the webhook workers through PostgreSQL", exc)


class WakeListener:
    """What an idle worker waits on: `wait(seconds)` returns when woken or after `seconds`.
    `start()` is called before the worker's first look, so nothing stored after it is
    missed."""

    def start(self) -> None:
        pass

    def wait(self, seconds: float) -> None:
        time.sleep(min(seconds, POLL_SECONDS))

    def close(self) -> None:
        pass


class RedisWakeListener(WakeListener):
    def __init__(self) -> None:
        self.client = None
        self.pubsub = None

    def start(self) -> None:
        if self.pubsub is None:
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=2,
                socket_timeout=None,
                # Seen in Redis' CLIENT LIST: which process of which host listens.
                client_name=f"{LISTENER_NAME}:{socket.gethostname()}:{os.getpid()}"[:120],
            )
            # Kept: a client that is garbage-collected closes its pool, the subscription's
            # connection with it.
            self.client = client
            self.pubsub = client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(settings.WEBHOOK_WAKE_CHANNEL)

    def wait(self, seconds: float) -> None:
        try:
            self.start()
            deadline = time.monotonic() + seconds
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if self.pubsub.get_message(timeout=left) is not None:
                    while self.pubsub.get_message(timeout=0) is not None:
                        pass  # many deliveries, one look
                    return
        except redis.RedisError as exc:
            _warn("webhook worker: cannot listen on Redis", exc)
            self.close()
            super().wait(seconds)

    def close(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self.pubsub.close()
                self.client.close()
            self.pubsub = self.client = None


class PostgresWakeListener(WakeListener):
    """LISTEN on its own autocommit connection."""

    def __init__(self) -> None:
        self.conn = None

    def start(self) -> None:
        if self.conn is None or self.conn.closed:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self.conn = psycopg.connect(**params, autocommit=True)
            self.conn.execute(f"LISTEN {PG_CHANNEL}")

    def wait(self, seconds: float) -> None:
        try:
            self.start()
            for _ in self.conn.notifies(timeout=seconds, stop_after=1):
                pass
        except psycopg.Error as exc:
            _warn("webhook worker: cannot listen on PostgreSQL", exc)
            self.close()
            super().wait(seconds)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def wake_listener() -> WakeListener:
    """The listener this configuration's intake wakes (see `deliveries_wake`)."""
    if settings.REDIS_URL:
        return RedisWakeListener()
    if connection.vendor == "postgresql":
        return PostgresWakeListener()
    return WakeListener()
