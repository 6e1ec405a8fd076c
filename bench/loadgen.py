"""The load generator: percentiles, HTTP load (closed and open loop) and WebSocket clients.

Pure asyncio + aiohttp. Every loop here is bounded twice: by a count and by a deadline.
Times are `time.perf_counter()` seconds in the harness process, so a sender and the
clients that receive its events share one clock.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The `pct` percentile (0–100) of `values`, nearest-rank on the sorted values, with
    linear interpolation between neighbours; None for no values."""
    if not values:
        return None
    if not 0 <= pct <= 100:
        raise ValueError("pct must be between 0 and 100")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


@dataclass
class Summary:
    """Latencies (seconds) of what succeeded, and what did not."""

    count: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    # What each answer said (its JSON "status", e.g. accepted / duplicate), by count.
    answers: dict[str, int] = field(default_factory=dict)
    # When each request in `latencies` was sent (same order), for per-window figures.
    started: list[float] = field(default_factory=list)
    # Keys of the requests that succeeded.
    ok_keys: list[str] = field(default_factory=list)
    # Open loop only: how late the harness sent requests against their schedule (seconds).
    send_lag_max: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def ms(self, pct: float) -> float | None:
        value = percentile(self.latencies, pct)
        return None if value is None else value * 1000

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": _round(self.ms(50)),
            "p90_ms": _round(self.ms(90)),
            "p99_ms": _round(self.ms(99)),
            "max_ms": _round(max(self.latencies) * 1000 if self.latencies else None),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "answers": dict(sorted(self.answers.items())),
            "send_lag_max_ms": round(self.send_lag_max * 1000, 1),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class Request:
    """One prepared HTTP request; `key` names it for matching what it causes."""

    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    key: str = ""


# (sender number, request number) → the loopback address to send from.
Source = Callable[[int, int], str]


def _session(base_url: str, limit: int, *, local_addr: str | None = None, once: bool = False):
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=limit, force_close=once, local_addr=(local_addr, 0) if local_addr else None
    )
    timeout = aiohttp.ClientTimeout(total=30)
    return aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=timeout)


def answer_label(data: bytes) -> str:
    """What a (small JSON) answer said: its "status", "error" for an error answer, else "-"."""
    if not data or len(data) > 2048:
        return "-"
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "-"
    if not isinstance(parsed, dict):
        return "-"
    if isinstance(parsed.get("status"), str):
        return parsed["status"][:30]
    return "error" if "error" in parsed else "-"


async def _send(client, request: Request, summary: Summary, ok: Callable[[int], bool]):
    started = time.perf_counter()
    try:
        async with client.request(
            request.method, request.path, data=request.body, headers=request.headers
        ) as response:
            data = await response.read()
            status = response.status
    except Exception:
        summary.errors += 1
        summary.statuses[0] = summary.statuses.get(0, 0) + 1
        return started, None
    took = time.perf_counter() - started
    summary.statuses[status] = summary.statuses.get(status, 0) + 1
    label = answer_label(data)
    summary.answers[label] = summary.answers.get(label, 0) + 1
    if ok(status):
        summary.count += 1
        summary.latencies.append(took)
        summary.started.append(started)
        if request.key:
            summary.ok_keys.append(request.key)
    else:
        summary.errors += 1
    return started, status


def _ok_2xx(status: int) -> bool:
    return 200 <= status < 300


async def closed_loop(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    max_seconds: float,
    ok: Callable[[int], bool] = _ok_2xx,
    source: Source | None = None,
) -> Summary:
    """`concurrency` clients, each sending its next request as soon as the last answered,
    until the requests run out or `max_seconds` pass. Throughput = answered / elapsed.

    With `source`, each client sends from the loopback address `source(client, n)` gives
    for request n: its own connection per address, a new one whenever the address changes
    (so an address per request is a connection per request)."""
    summary = Summary()
    queue = enumerate(requests)
    deadline = time.perf_counter() + max_seconds
    async with _session(base_url, concurrency) as shared:

        async def user(number: int) -> None:
            address, own = None, None
            try:
                for index, request in queue:  # the shared iterator bounds the count
                    if time.perf_counter() >= deadline:
                        return
                    client = shared
                    if source is not None:
                        wanted = source(number, index)
                        if wanted != address or own is None:
                            if own is not None:
                                await own.close()
                            reuse = source(number, index + concurrency) == wanted
                            own = _session(base_url, 1, local_addr=wanted, once=not reuse)
                            address = wanted
                        client = own
                    await _send(client, request, summary, ok)
            finally:
                if own is not None:
                    await own.close()

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(concurrency)))
        summary.elapsed = time.perf_counter() - started
    return summary


async def open_loop(
    base_url: str,
    requests: Sequence[Request],
    *,
    rate: float,
    max_seconds: float,
    sent_at: dict[str, float] | None = None,
    ok: Callable[[int], bool] = _ok_2xx,
    max_in_flight: int = 256,
    drain_seconds: float = 30,
) -> Summary:
    """Start one request every 1/`rate` seconds whatever the answers (as providers do),
    until the requests run out or `max_seconds` pass; records each start in `sent_at`."""
    summary = Summary()
    interval = 1.0 / rate
    in_flight: set[asyncio.Task] = set()
    async with _session(base_url, max_in_flight) as client:
        started = time.perf_counter()
        for index, request in enumerate(requests):
            due = started + index * interval
            if due - started >= max_seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                summary.send_lag_max = max(summary.send_lag_max, -delay)
            if sent_at is not None and request.key:
                sent_at[request.key] = time.perf_counter()
            task = asyncio.ensure_future(_send(client, request, summary, ok))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=drain_seconds)
        summary.elapsed = time.perf_counter() - started
    return summary


class SocketPool:
    """N WebSocket clients; each frame whose key (`key_of(frame)`) is one we wait for is
    stamped with its arrival time, per client."""

    def __init__(self, urls: Sequence[str], headers: Sequence[dict[str, str]], key_of) -> None:
        self.urls = list(urls)
        self.headers = list(headers)
        self.key_of = key_of
        self.received: list[dict[str, float]] = [{} for _ in self.urls]
        self.frames = 0
        self.refused = 0
        self._sockets: list = []
        self._readers: list[asyncio.Task] = []
        self._client = None

    async def __aenter__(self) -> SocketPool:
        import aiohttp

        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        )
        return self

    async def connect(self, *, parallel: int = 20, max_seconds: float = 120) -> int:
        """Open every socket (at most `parallel` handshakes at once); returns how many
        are open."""
        gate = asyncio.Semaphore(parallel)
        self._sockets = [None] * len(self.urls)

        async def one(index: int) -> None:
            async with gate:
                try:
                    ws = await self._client.ws_connect(
                        self.urls[index], headers=self.headers[index], heartbeat=None
                    )
                except Exception:
                    self.refused += 1
                    return
                self._sockets[index] = ws
                self._readers.append(asyncio.ensure_future(self._read(index, ws)))

        await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(len(self.urls)))), timeout=max_seconds
        )
        return sum(1 for ws in self._sockets if ws is not None)

    async def _read(self, index: int, ws) -> None:
        received = self.received[index]
        async for message in ws:
            now = time.perf_counter()
            if message.type.name != "TEXT":
                continue
            self.frames += 1
            try:
                key = self.key_of(json.loads(message.data))
            except (ValueError, TypeError, KeyError):
                continue
            if key and key not in received:
                received[key] = now

    async def wait_for(self, keys: Sequence[str], *, max_seconds: float) -> bool:
        """Until every open client got every key, or `max_seconds` pass."""
        deadline = time.perf_counter() + max_seconds
        wanted = set(keys)
        while time.perf_counter() < deadline:
            if all(
                wanted <= got.keys()
                for got, ws in zip(self.received, self._sockets, strict=True)
                if ws is not None
            ):
                return True
            await asyncio.sleep(0.05)
        return False

    def latencies(self, sent_at: dict[str, float]) -> tuple[list[float], int]:
        """(send → receive of every (client, key) pair, how many pairs never arrived)."""
        values, missing = [], 0
        for got, ws in zip(self.received, self._sockets, strict=True):
            if ws is None:
                continue
            for key, sent in sent_at.items():
                at = got.get(key)
                if at is None:
                    missing += 1
                else:
                    values.append(at - sent)
        return values, missing

    async def __aexit__(self, *exc) -> None:
        for ws in self._sockets:
            if ws is not None:
                await ws.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self._client.close()


def windows(
    started: Sequence[float],
    latencies: Sequence[float],
    *,
    origin: float,
    width: float = 1.0,
    pct: float = 99,
) -> list[dict]:
    """Per window of `width` seconds from `origin` (by send time): how many requests were
    sent in it and their `pct` percentile latency in ms, in window order."""
    if len(started) != len(latencies):
        raise ValueError("started and latencies differ in length")
    if width <= 0:
        raise ValueError("width must be positive")
    buckets: dict[int, list[float]] = {}
    for at, took in zip(started, latencies, strict=True):
        buckets.setdefault(max(0, math.floor((at - origin) / width)), []).append(took)
    return [
        {"window": index, "start_s": round(index * width, 3), "count": len(values),
         "p_ms": round(percentile(values, pct) * 1000, 1)}
        for index, values in sorted(buckets.items())
    ]  # fmt: skip


def loopback_address(number: int) -> str:
    """The `number`-th (from 0) loopback address 127.a.b.c with no octet 0 or 255 (so
    never a network or broadcast look-alike): 0 → 127.1.1.1, 1 → 127.1.1.2, …"""
    if number < 0:
        raise ValueError("number must be at least 0")
    c = number % 254
    b = number // 254 % 254
    a = number // 254 // 254
    if a >= 254:
        raise ValueError("beyond the loopback addresses")
    return f"127.{a + 1}.{b + 1}.{c + 1}"


def spread(items: Sequence, count: int) -> list:
    """`count` items taken round-robin from `items` (e.g. clients over daphne ports)."""
    return [items[i % len(items)] for i in range(count)]
