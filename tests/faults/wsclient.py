"""A WebSocket client over real TCP that behaves like static/js/events.js.

It connects to /ws/events/, reconnects with exponential back-off and full jitter,
resumes from the last id it saw (`since=`, plus `from=`/`seen=` for late commits just
below it), drops duplicates by id and counts what it got — including duplicates the
server sent, which a test can then assert never happen.
"""

import asyncio
import json
import random
import threading
import time
from urllib.parse import urlencode

import aiohttp

BASE_DELAY = 0.5
MAX_DELAY = 4.0  # events.js caps at 10 s; lower here so a test ends sooner
RESUME_LOOKBACK = 200
FATAL_CLOSE_CODES = {4400, 4401}


class EventClient:
    def __init__(
        self, base_url: str, *, since: int, token: str = "", cookie: str = "", name: str = ""
    ):
        self.base_url = base_url.replace("http://", "ws://")
        self.origin = base_url
        self.token, self.cookie, self.name = token, cookie, name
        self.last_id = self.start_id = since
        self.seen: set[int] = set()
        self.seen_order: list[int] = []
        self.received: list[int] = []
        self.frames_by_id: dict[int, int] = {}  # id -> times the server sent it
        self.arrived_at: dict[int, float] = {}  # id -> time.monotonic() of its first frame
        self.connects = 0
        self.failed_connects = 0
        self.refusals: list[int] = []  # HTTP statuses of refused handshakes
        self.resyncs = 0
        self.live_states: list[str] = []  # "degraded" / "ok" frames, in order
        self.fatal: int | None = None
        self.connected = asyncio.Event()
        self._stopped = False

    def url(self) -> str:
        params = {"since": str(self.last_id)}
        if self.start_id < self.last_id:
            floor = max(self.start_id, self.last_id - RESUME_LOOKBACK)
            recent = [i for i in self.seen_order if i > floor][-500:]
            params["from"] = str(self.start_id)
            params["seen"] = ",".join(map(str, recent))
        if self.token:
            params["token"] = self.token
        return f"{self.base_url}/ws/events/?{urlencode(params)}"

    def handle(self, frame: dict) -> None:
        if frame.get("type") in ("heartbeat", "pong"):
            return
        if frame.get("type") == "resync":
            self.resyncs += 1
            return
        if frame.get("type") == "live":
            self.live_states.append(frame.get("state"))
            return
        event_id = frame.get("id")
        if not isinstance(event_id, int):
            return
        self.frames_by_id[event_id] = self.frames_by_id.get(event_id, 0) + 1
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        self.arrived_at[event_id] = time.monotonic()
        self.seen_order.append(event_id)
        self.received.append(event_id)
        self.last_id = max(self.last_id, event_id)

    async def run(self, session: aiohttp.ClientSession) -> None:
        attempt = 0
        headers = {"Origin": self.origin}
        if self.cookie:
            headers["Cookie"] = self.cookie
        while not self._stopped:
            try:
                async with session.ws_connect(
                    self.url(), headers=headers, timeout=aiohttp.ClientWSTimeout(ws_close=2),
                    heartbeat=None, autoping=True,
                ) as ws:  # fmt: skip
                    self.connects += 1
                    attempt = 0
                    self.connected.set()
                    async for message in ws:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            self.handle(json.loads(message.data))
                        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                            break
                    self.connected.clear()
                    if ws.close_code in FATAL_CLOSE_CODES:
                        self.fatal = ws.close_code
                        return
            except aiohttp.WSServerHandshakeError as exc:
                self.failed_connects += 1
                self.refusals.append(exc.status)
            except (TimeoutError, aiohttp.ClientError, OSError):
                self.failed_connects += 1
            self.connected.clear()
            if self._stopped:
                return
            ceiling = min(MAX_DELAY, BASE_DELAY * 2**attempt)
            attempt += 1
            await asyncio.sleep(BASE_DELAY / 2 + random.random() * ceiling)

    def stop(self) -> None:
        self._stopped = True


class ClientPool:
    """The clients, run on an event loop of their own in a thread."""

    def __init__(self, clients: list[EventClient]) -> None:
        self.clients = clients
        self.loop = asyncio.new_event_loop()
        self._tasks: list[asyncio.Task] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def _start():
            self.http = aiohttp.ClientSession()
            self._tasks = [asyncio.ensure_future(c.run(self.http)) for c in clients]

        asyncio.run_coroutine_threadsafe(_start(), self.loop).result(timeout=10)

    def all_connected(self) -> bool:
        return all(c.connected.is_set() for c in self.clients)

    def close(self) -> None:
        async def _stop():
            for client in self.clients:
                client.stop()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.http.close()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
