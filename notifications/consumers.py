"""The one WebSocket endpoint, /ws/events/.

Who may see what is computed here from the session user and the signed token, never from
what the client asks. With `?since=<id>` the missed events are replayed in order before
live ones; more than EVENTS_MAX_BACKLOG behind gives one `resync` frame instead.

Pushes through the channel layer are best effort: with Redis pub/sub a message published
while Redis or this process's subscription is down is gone. So at every heartbeat the
connection also reads the log for its audiences past what it has sent, and sends what it
missed: an event reaches an open connection at most one heartbeat late, whatever happened
to the push. Each event id is sent once per connection.

A connection opened while the channel layer does not answer is accepted all the same: it
replays from the log, tells the page `{"type": "live", "state": "degraded"}` (the page
shows that it is reconnecting its live updates), reads the log every
EVENTS_DEGRADED_POLL_SECONDS and keeps trying to join its groups. Once joined it reads the
log one last time — what was published before the join is there, what comes after is
pushed — and says `{"type": "live", "state": "ok"}`.

When the connection ends, its channel leaves the layer whatever state it was in — being
made, made but not yet read from, or Redis failing at that moment (see
notifications/layer_health.py): a long-running server under a flapping Redis must not
collect channels and subscriptions of connections long gone.
"""

import asyncio
import contextlib
import logging
import random
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from notifications.audiences import audience_group, user_audiences
from notifications.errors import InvalidToken
from notifications.layer_health import LAYER_TIMEOUT_SECONDS, channel_forget, layer_health
from notifications.relay import relay_ensure_running
from notifications.selectors import RESUME_LOOKBACK, event_latest_id, events_after
from notifications.services import PUSH_MESSAGE_TYPE
from notifications.tokens import token_audiences

logger = logging.getLogger(__name__)

RAW_SEND_SCOPE_KEY = "confirma.raw_send"
CLOSE_UNAUTHORISED = 4401
CLOSE_BAD_REQUEST = 4400
_SENT_MEMORY = 4096


class RawSendMiddleware:
    """Outermost WebSocket middleware: keeps the server's `send` in the scope, so frames
    already encoded go out without the session middleware's per-message work (it saves
    sessions on HTTP responses only)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        return await self.app(dict(scope, **{RAW_SEND_SCOPE_KEY: send}), receive, send)


def _connection_audiences(user, token: str | None) -> list[str] | None:
    """The audiences of a connection, or None when it must be refused."""
    audiences = user_audiences(user)
    if token:
        try:
            audiences += [a for a in token_audiences(token) if a not in audiences]
        except InvalidToken:
            return None
    return audiences or None


def _parse_seen(raw: str | None):
    """`seen=1,2,3`: ids the client already has (at most 500); False when malformed."""
    if raw in (None, ""):
        return None
    parts = raw.split(",")
    if len(parts) > 500 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        return False
    return {int(p) for p in parts}


def _token_still_valid(token: str, audiences: list[str]) -> bool:
    try:
        return set(token_audiences(token)) <= set(audiences)
    except InvalidToken:
        return False


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        # Channels' AsyncConsumer.__call__ makes the consumer's channel before the
        # connection is even looked at, so a channel layer that does not answer turned
        # every new connection into an HTTP 500. Here `_join` makes it, may fail and be
        # retried, and the channel is read from once it exists; `_leave` removes it.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        self._channel_made = asyncio.Event()
        self._making: asyncio.Future | None = None
        self._groups: list[str] = []
        self._heartbeat: asyncio.Task | None = None
        self._rejoin: asyncio.Task | None = None
        self._closing = False
        self._left = False
        self.base_send = send
        # The server's own send, kept by RawSendMiddleware (config/asgi.py) outside the
        # session middleware; the wrapped one where that middleware is not in the stack.
        self._raw_send = scope.get(RAW_SEND_SCOPE_KEY) or send
        try:
            with contextlib.suppress(StopConsumer):
                await self._serve(receive)
        finally:
            # Normally done by `disconnect`; this is for a consumer cancelled before it.
            self._stop_tasks()
            self._leave()

    async def _serve(self, receive) -> None:
        """Read the WebSocket and the channel layer, each in a loop of its own, and
        dispatch what comes one message at a time, as channels' `await_many_dispatch`
        does. That made a new task and an `asyncio.wait` for every message: with a
        hundred screens on a server and every push going to each, that bookkeeping took
        a fifth of the server's samples (`make bench ARGS=--profile`). The first loop to
        end (a handler raising, StopConsumer on disconnect) ends the other."""
        dispatching = asyncio.Lock()

        async def loop(source) -> None:
            while True:
                message = await source()
                async with dispatching:
                    await self.dispatch(message)

        loops = [
            asyncio.ensure_future(loop(receive)),
            asyncio.ensure_future(loop(self._layer_receive)),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError, StopConsumer, Exception):
                    await task

    async def _layer_receive(self) -> dict:
        await self._channel_made.wait()
        if self._closing:
            # The channel is being removed: a receive() now would subscribe it again.
            await asyncio.Future()
        return await self.channel_layer.receive(self.channel_name)

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [None])[0]
        since_raw = (query.get("since") or [None])[0]
        self.audiences: list[str] = []
        self._sent: deque[int] = deque(maxlen=_SENT_MEMORY)
        self._sent_set: set[int] = set()
        self.token = None

        audiences = await database_sync_to_async(_connection_audiences)(
            self.scope.get("user"), token
        )
        if audiences is None:
            await self.close(code=CLOSE_UNAUTHORISED)
            return
        since = None
        if since_raw not in (None, ""):
            if not since_raw.isdigit() or len(since_raw) > 18:
                await self.close(code=CLOSE_BAD_REQUEST)
                return
            since = int(since_raw)
        seen = _parse_seen((query.get("seen") or [None])[0])
        floor_raw = (query.get("from") or [""])[0]
        if seen is False or (floor_raw and (not floor_raw.isdigit() or len(floor_raw) > 18)):
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        floor = int(floor_raw) if floor_raw else None
        self.token = token

        self.audiences = audiences
        # Where this connection's catch-up reads from: what it replays, or the log's end.
        self._cursor = (
            since if since is not None else await database_sync_to_async(event_latest_id)()
        )
        self._floor = self._cursor
        self._groups = [audience_group(audience) for audience in audiences]
        live = await self._join()
        await self.accept()
        relay_ensure_running()
        if not live:
            await self.send_json(
                {"type": "live", "state": "degraded", "at": timezone.now().isoformat()}
            )
        if since is not None:
            await self._replay(since, seen, floor)
        self._heartbeat = asyncio.ensure_future(self._beat())
        if not live:
            self._rejoin = asyncio.ensure_future(self._degraded())

    async def _join(self) -> bool:
        """Make this connection's channel and join its groups; False when the channel
        layer does not answer (or is known to be down), and the pushes cannot come."""
        if self.channel_layer is None or self._closing:
            return False
        health = layer_health()
        if not await health.answers(self.channel_layer):
            return False
        try:
            async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
                if self.channel_name is None:
                    self.channel_name = await self._new_channel()
                    self._channel_made.set()
                # Joining a group twice is harmless; a failed join may have half-happened.
                for group in self._groups:
                    await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            health.mark_down(exc)
            return False
        return True

    async def _new_channel(self) -> str:
        """This connection's channel, made once. The making runs in a future of its own
        that neither a timeout nor the end of the connection interrupts: interrupted, the
        pub/sub layer would keep the channel subscribed under a name nobody knows. A
        later attempt (or `_leave`) picks up a making still under way."""
        if self._making is None:
            self._making = asyncio.ensure_future(self.channel_layer.new_channel())
        try:
            return await asyncio.shield(self._making)
        except Exception:
            self._making = None  # it failed: the next attempt makes another
            raise

    async def _degraded(self) -> None:
        """Until the groups are joined: read the log every EVENTS_DEGRADED_POLL_SECONDS
        (the pushes are not coming) and try to join; then say that pushes are back."""
        interval = settings.EVENTS_DEGRADED_POLL_SECONDS
        delay = interval * random.uniform(0.5, 1.0)  # noqa: S311 - spreading load, not secrecy
        while True:
            await asyncio.sleep(delay)
            delay = interval
            joined = await self._join()
            # After a join, this read covers everything published before it.
            try:
                await self._catch_up()
            except Exception:
                logger.exception("events catch-up failed")
                continue
            if joined:
                await self.send_json(
                    {"type": "live", "state": "ok", "at": timezone.now().isoformat()}
                )
                return

    async def _replay(self, since: int, seen: set[int] | None, floor: int | None) -> None:
        backlog = await database_sync_to_async(events_after)(
            audiences=self.audiences,
            since=since,
            limit=settings.EVENTS_MAX_BACKLOG,
            seen=seen,
            floor=floor,
        )
        if backlog.too_far_behind:
            await self.send_json({"type": "resync", "at": timezone.now().isoformat()})
            return
        for event in backlog.events:
            await self._send_frame(event.as_frame())

    async def _catch_up(self) -> None:
        """Send what the log holds for this connection and the pushes did not bring."""
        recent = {i for i in self._sent_set if i > self._cursor - RESUME_LOOKBACK}
        backlog = await database_sync_to_async(events_after)(
            audiences=self.audiences,
            since=self._cursor,
            limit=settings.EVENTS_MAX_BACKLOG,
            seen=recent,
            floor=self._floor,
        )
        if backlog.too_far_behind:
            self._cursor = await database_sync_to_async(event_latest_id)()
            await self.send_json({"type": "resync", "at": timezone.now().isoformat()})
            return
        missed = [event for event in backlog.events if event.id not in self._sent_set]
        if missed:
            logger.info("events catch-up: %d missed pushes sent from the log", len(missed))
        for event in missed:
            await self._send_frame(event.as_frame())

    async def _send_frame(self, frame: dict, text: str | None = None) -> None:
        """Send one event frame, once per connection. `text`, the frame already encoded
        (a push), goes out through the connection's own send: the session middleware's
        wrapper has nothing to do for a WebSocket frame, and at a hundred screens a
        notification its checks and the encoding added up."""
        event_id = frame["id"]
        if event_id in self._sent_set:
            return
        if len(self._sent) == self._sent.maxlen:
            self._sent_set.discard(self._sent[0])
        self._sent.append(event_id)
        self._sent_set.add(event_id)
        self._cursor = max(self._cursor, event_id)
        if text is None:
            await self.send_json(frame)
        else:
            await self._raw_send({"type": "websocket.send", "text": text})

    async def _beat(self) -> None:
        # The first beat at a random point of the interval: screens that connected together
        # (after a restart, a deploy) do not all read the log at the same moment.
        interval = settings.EVENTS_HEARTBEAT_SECONDS
        delay = interval * random.uniform(0.5, 1.0)  # noqa: S311 - spreading load, not secrecy
        while True:
            await asyncio.sleep(delay)
            delay = interval
            if self.token and not await database_sync_to_async(_token_still_valid)(
                self.token, self.audiences
            ):
                # Expired, or a device token that was replaced: the grant ends now.
                await self.close(code=CLOSE_UNAUTHORISED)
                return
            await self._catch_up()
            await self.send_json({"type": "heartbeat", "at": timezone.now().isoformat()})

    async def dispatch(self, message: dict) -> None:
        # Channels runs `close_old_connections` in the process's one sync thread before
        # every handler. A push touches no database; at thousands of pushes a second
        # those hops queued behind each other (and behind catch-up reads) for seconds.
        if message.get("type") == PUSH_MESSAGE_TYPE:
            await self.event_push(message)
            return
        await super().dispatch(message)

    async def event_push(self, message: dict) -> None:
        await self._send_frame(message["frame"], message.get("text"))

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "at": timezone.now().isoformat()})

    async def disconnect(self, code) -> None:
        rejoin = self._rejoin
        self._stop_tasks()
        if rejoin is not None:
            # It may be making or joining the channel right now: let it stop first.
            await asyncio.wait({rejoin}, timeout=LAYER_TIMEOUT_SECONDS)
        tried = self._leave()
        if tried is not None:
            # The removal goes on by itself if this attempt fails or takes longer.
            await asyncio.wait({tried}, timeout=LAYER_TIMEOUT_SECONDS)

    def _stop_tasks(self) -> None:
        self._closing = True
        for task in (self._heartbeat, self._rejoin):
            if task:
                task.cancel()

    def _leave(self) -> asyncio.Future | None:
        """Start removing this connection's channel from the layer, once; the future of
        the first attempt, or None when there is nothing to remove."""
        if self._left:
            return None
        self._left = True
        channel = self.channel_name or self._making
        if channel is None or self.channel_layer is None:
            return None
        return channel_forget(self.channel_layer, channel=channel, groups=self._groups)
