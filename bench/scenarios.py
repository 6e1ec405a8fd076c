"""The benchmarks. Each measures Confirma and its baseline in the same run, on the same
stack, and returns table rows plus the details kept in the results file.

Orchestration is synchronous (it uses the ORM); load phases run in `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import Request, SocketPool, Summary, closed_loop, open_loop, percentile, spread
from bench.stack import PROXY_HEADERS, ROOT

KIOSK_PATH = "/webhooks/kiosk/"
AUDIENCE = "role:operator"  # what the ticket flow tells operators (ticket.created)


@dataclass
class Row:
    bench: str
    figure: str
    unit: str
    value: float | None
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def result(self) -> str:
        if self.value is None:
            return "not available"
        return {True: "pass", False: "MISS", None: "info"}[self.passed]

    def as_dict(self) -> dict:
        return {
            "bench": self.bench,
            "figure": self.figure,
            "unit": self.unit,
            "value": _r(self.value),
            "baseline": _r(self.baseline),
            "baseline_label": self.baseline_label,
            "ratio": _r(self.ratio, 3),
            "target": self.target,
            "result": self.result,
            "note": self.note,
        }


def _r(value, digits: int = 1):
    return None if value is None else round(value, digits)


@dataclass
class Context:
    stack: object
    world: object
    printer: object
    quick: bool
    outdir: Path
    profile: bool = False
    details: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)

    def n(self, quick: int, full: int) -> int:
        return quick if self.quick else full


# --- helpers ---------------------------------------------------------------------------------


def kiosk_requests(secret: str, references: list[str]) -> list[Request]:
    """Signed kiosk notifications ("paid") for the given sessions, as the terminal sends."""
    from bench.fixtures import SERVICE_PRICE
    from payments.fakes.kiosk import kiosk_notification

    out = []
    for reference in references:
        headers, body = kiosk_notification(
            secret=secret, reference=reference, amount=str(SERVICE_PRICE), currency="BRL"
        )
        out.append(Request(KIOSK_PATH, body, {**headers, **PROXY_HEADERS}, key=reference))
    return out


def insert_requests(count: int) -> list[Request]:
    body = b'{"status": "paid", "reference": "ps_baseline"}'
    headers = {"content-type": "application/json", **PROXY_HEADERS}
    return [Request("/bench/insert/", body, headers) for _ in range(count)]


def group_send_requests(start: int, count: int) -> list[Request]:
    return [
        Request(f"/bench/group-send/?key={i}&audience={AUDIENCE}", b"", PROXY_HEADERS, key=str(i))
        for i in range(start, start + count)
    ]


def frame_key(frame: dict) -> str | None:
    """The key a frame answers: a ticket.created event's payment reference, or a baseline
    frame's key."""
    if frame.get("type") in ("ticket.created", "bench.ping"):
        return frame["payload"]["reference"]
    return None


def drain_tasks(max_seconds: float = 600) -> bool:
    """Wait until the servers are idle: no webhook delivery still being processed and no
    task due, twice in a row (what an earlier phase left, such as printing or requests
    still queued after the client gave up, must not load the next one)."""
    from django.db.models import Q
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult, get_date_max

    from payments.models import DeliveryStatus, WebhookDelivery

    deadline = time.monotonic() + max_seconds
    quiet = 0
    while time.monotonic() < deadline:
        now = timezone.now()
        due = DBTaskResult.objects.filter(status="READY").filter(
            Q(run_after=get_date_max()) | Q(run_after__lte=now)
        )
        busy = (
            due.exists() or WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).exists()
        )
        quiet = 0 if busy else quiet + 1
        if quiet >= 2:
            return True
        time.sleep(0.5)
    return False


def maybe_profile(ctx: Context, name: str, seconds: int):
    if not ctx.profile:
        return None
    from bench.profiling import Profiler

    return Profiler(ctx.outdir, name, ctx.stack.pids(), seconds)


def _summary_rows(bench: str, what: str, mine: Summary, base: Summary, base_label: str):
    return [
        Row(bench, f"{what} p50", "ms", mine.ms(50), base.ms(50), base_label),
        Row(bench, f"{what} p99", "ms", mine.ms(99), base.ms(99), base_label),
    ]


# --- 1. webhook throughput ----------------------------------------------------------------


def webhook_throughput(ctx: Context) -> list[Row]:
    stack, world = ctx.stack, ctx.world
    count, seconds, concurrency = ctx.n(500, 4000), ctx.n(10, 60), 32
    warm = 64
    references = world.ticket_sessions(count + warm)
    url = stack.http_url
    asyncio.run(closed_loop(url, insert_requests(warm), concurrency=8, max_seconds=20))
    asyncio.run(
        closed_loop(
            url, kiosk_requests(stack.kiosk_secret, references[:warm]), concurrency=8,
            max_seconds=20,
        )
    )  # fmt: skip
    drain_tasks()
    base = asyncio.run(
        closed_loop(url, insert_requests(count), concurrency=concurrency, max_seconds=seconds)
    )
    requests = kiosk_requests(stack.kiosk_secret, references[warm:])
    profiler = maybe_profile(ctx, "webhook-throughput", min(seconds, 20))
    mine = asyncio.run(closed_loop(url, requests, concurrency=concurrency, max_seconds=seconds))
    if profiler:
        ctx.profiles["webhook-throughput"] = profiler.finish()
    from tickets.models import PrintJob, Ticket

    tickets = Ticket.objects.filter(payment_session__reference__in=references[warm:]).count()
    # The task worker prints what the burst paid for: how fast does it work through it?
    backlog = PrintJob.objects.exclude(status="printed").count()
    started = time.monotonic()
    drained = drain_tasks()
    drain_seconds = time.monotonic() - started
    printed = backlog - PrintJob.objects.exclude(status="printed").count()
    ctx.details["webhook_throughput"] = {
        "concurrency": concurrency,
        "confirma": mine.as_dict(),
        "baseline_insert_commit": base.as_dict(),
        "tickets_created": tickets,
        "print_backlog": backlog,
        "print_backlog_drained": drained,
        "print_backlog_seconds": round(drain_seconds, 1),
    }
    note = f"{mine.count} notifications, {tickets} tickets, {mine.errors} errors"
    ratio_ok = base.rate > 0 and mine.rate / base.rate >= 0.6
    return [
        Row(
            "1 webhook throughput", "sustained", "notif/s", mine.rate, base.rate,
            "INSERT+COMMIT req/s", "ratio ≥ 0.6", ratio_ok and mine.errors == 0, note,
        ),
        *_summary_rows("1 webhook throughput", "latency", mine, base, "INSERT+COMMIT"),
        Row(
            "1 webhook throughput", "print backlog drained", "jobs/s",
            printed / drain_seconds if drain_seconds > 0.5 and printed > 0 else None,
            note=f"{printed} of {backlog} queued print jobs in {drain_seconds:.0f} s by one "
            "db_worker",
        ),
    ]  # fmt: skip


# --- 2. webhook → screen latency ------------------------------------------------------------


def _cookie_headers(cookies: list[str]) -> list[dict[str, str]]:
    return [{"Cookie": c, "Origin": "http://127.0.0.1"} for c in cookies]


def screen_latency(ctx: Context, rate: float = 100.0) -> list[Row]:
    """100 operators' screens; notifications at `rate` per second (the target is judged
    at 100/s; a lower rate is reported for information)."""
    stack, world = ctx.stack, ctx.world
    clients, seconds = 100, ctx.n(4, 20)
    judged = rate >= 100
    count = int(rate * seconds)
    references = world.ticket_sessions(count)
    cookies = world.operator_cookies(clients)
    drain_tasks()

    async def run():
        urls = spread(stack.ws_urls, clients)
        async with SocketPool(urls, _cookie_headers(cookies), frame_key) as pool:
            opened = await pool.connect()
            await asyncio.sleep(1)
            sent_base: dict[str, float] = {}
            base = await open_loop(
                stack.http_url, group_send_requests(1, count), rate=rate,
                max_seconds=seconds, sent_at=sent_base, drain_seconds=ctx.n(10, 30),
            )  # fmt: skip
            await pool.wait_for(list(sent_base), max_seconds=ctx.n(8, 20))
            base_lat, base_missing = pool.latencies(sent_base)
            await asyncio.to_thread(drain_tasks)
            sent: dict[str, float] = {}
            requests = kiosk_requests(stack.kiosk_secret, references)
            profiler = maybe_profile(ctx, "screen-latency", seconds)
            mine = await open_loop(
                stack.http_url, requests, rate=rate, max_seconds=seconds, sent_at=sent,
                drain_seconds=ctx.n(10, 30),
            )  # fmt: skip
            await pool.wait_for(list(sent), max_seconds=ctx.n(8, 20))
            if profiler:
                ctx.profiles["screen-latency"] = await asyncio.to_thread(profiler.finish)
            lat, missing = pool.latencies(sent)
            return opened, base, base_lat, base_missing, mine, lat, missing

    opened, base, base_lat, base_missing, mine, lat, missing = asyncio.run(run())
    p = {
        k: (None if percentile(v, q) is None else percentile(v, q) * 1000)
        for k, v, q in (
            ("mine50", lat, 50), ("mine99", lat, 99), ("base50", base_lat, 50),
            ("base99", base_lat, 99),
        )
    }  # fmt: skip
    ctx.details[f"screen_latency_{rate:g}_per_s"] = {
        "clients_open": opened,
        "rate_per_s": rate,
        "seconds": seconds,
        "confirma": {"requests": mine.as_dict(), "deliveries": len(lat), "missing": missing,
                     "p50_ms": _r(p["mine50"]), "p99_ms": _r(p["mine99"])},
        "baseline_group_send": {"requests": base.as_dict(), "deliveries": len(base_lat),
                                "missing": base_missing, "p50_ms": _r(p["base50"]),
                                "p99_ms": _r(p["base99"])},
    }  # fmt: skip
    passed = None
    if judged and p["mine99"] is not None and p["base99"] is not None:
        passed = p["mine99"] <= p["base99"] and missing <= base_missing
    note = (
        f"{opened} clients, {mine.count}+{mine.errors} err notifications; missing deliveries "
        f"{missing} vs baseline {base_missing}"
    )
    return [
        Row(f"2 webhook→screen (100 clients, {rate:g}/s)", "p99", "ms", p["mine99"],
            p["base99"], "group_send only", "≤ baseline" if judged else "", passed, note),
        Row(f"2 webhook→screen (100 clients, {rate:g}/s)", "p50", "ms", p["mine50"],
            p["base50"], "group_send only"),
    ]  # fmt: skip


# --- 3. fan-out ------------------------------------------------------------------------------


def fan_out(ctx: Context) -> list[Row]:
    stack, world = ctx.stack, ctx.world
    clients, rounds = 500, ctx.n(5, 20)
    references = world.ticket_sessions(rounds)
    cookies = world.operator_cookies(clients)
    drain_tasks()

    async def one_by_one(pool: SocketPool, requests: list[Request]):
        sent: dict[str, float] = {}
        for request in requests:
            await open_loop(stack.http_url, [request], rate=1, max_seconds=5, sent_at=sent)
            await pool.wait_for([request.key], max_seconds=5)
            await asyncio.sleep(0.7)  # let the ticket.printed fan-out pass too
        return pool.latencies(sent)

    async def run():
        urls = spread(stack.ws_urls, clients)
        async with SocketPool(urls, _cookie_headers(cookies), frame_key) as pool:
            opened = await pool.connect(parallel=25, max_seconds=180)
            await asyncio.sleep(1)
            base = await one_by_one(pool, group_send_requests(10**6, rounds))
            mine = await one_by_one(pool, kiosk_requests(stack.kiosk_secret, references))
            return opened, base, mine

    opened, (base_lat, base_missing), (lat, missing) = asyncio.run(run())
    mine99 = percentile(lat, 99)
    base99 = percentile(base_lat, 99)
    mine99 = None if mine99 is None else mine99 * 1000
    base99 = None if base99 is None else base99 * 1000
    ctx.details["fan_out"] = {
        "clients_open": opened,
        "rounds": rounds,
        "confirma": {"deliveries": len(lat), "missing": missing, "p99_ms": _r(mine99),
                     "p50_ms": _r(_ms(percentile(lat, 50)))},
        "baseline_group_send": {"deliveries": len(base_lat), "missing": base_missing,
                                "p99_ms": _r(base99), "p50_ms": _r(_ms(percentile(base_lat, 50)))},
    }  # fmt: skip
    passed = None if mine99 is None else (mine99 < 250 and missing == 0 and opened == clients)
    return [
        Row("3 fan-out (500 clients)", "p99 send→all", "ms", mine99, base99, "group_send only",
            "< 250 ms", passed, f"{opened} clients, {rounds} events, {missing} missing"),
    ]  # fmt: skip


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


# --- 5. paid → printed ------------------------------------------------------------------------


def paid_to_printed(ctx: Context) -> list[Row]:
    stack, world, printer = ctx.stack, ctx.world, ctx.printer
    count, rate = ctx.n(40, 200), 4.0
    references = world.ticket_sessions(count)
    drain_tasks()
    filler = b"\x1b@" + b"Bench ticket line\n" * 40
    import json

    base_requests = []
    for i in range(count):
        data = (filler + f"bk_{i}\n".encode() + b"\x1dV\x00").hex()
        body = json.dumps({"printer": printer.url, "data": data}).encode()
        headers = {"content-type": "application/json", **PROXY_HEADERS}
        base_requests.append(Request("/bench/print/", body, headers, key=f"bk_{i}"))

    def measure(requests: list[Request]):
        sent: dict[str, float] = {}
        summary = asyncio.run(
            open_loop(stack.http_url, requests, rate=rate, max_seconds=count / rate + 5,
                      sent_at=sent)
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not set(sent) <= printer.printed.keys():
            time.sleep(0.1)
        values = [printer.printed[k] - t for k, t in sent.items() if k in printer.printed]
        return summary, values, len(sent) - len(values)

    base, base_lat, base_missing = measure(base_requests)
    mine, lat, missing = measure(kiosk_requests(stack.kiosk_secret, references))
    mine99, base99 = _ms(percentile(lat, 99)), _ms(percentile(base_lat, 99))
    ctx.details["paid_to_printed"] = {
        "rate_per_s": rate,
        "confirma": {"requests": mine.as_dict(), "printed": len(lat), "missing": missing,
                     "p50_ms": _r(_ms(percentile(lat, 50))), "p99_ms": _r(mine99)},
        "baseline_print_task": {"requests": base.as_dict(), "printed": len(base_lat),
                                "missing": base_missing,
                                "p50_ms": _r(_ms(percentile(base_lat, 50))), "p99_ms": _r(base99)},
    }  # fmt: skip
    passed = None if mine99 is None else (mine99 < 500 and missing == 0)
    return [
        Row("5 paid→printed", "p99", "ms", mine99, base99, "bare print task", "< 500 ms",
            passed, f"{len(lat)}/{count} printed"),
        Row("5 paid→printed", "p50", "ms", _ms(percentile(lat, 50)),
            _ms(percentile(base_lat, 50)), "bare print task"),
    ]  # fmt: skip


# --- 4. growth -------------------------------------------------------------------------------


def _webhook_p50(ctx: Context, stack, world, count: int) -> Summary:
    references = world.ticket_sessions(count + 20)
    warm = kiosk_requests(stack.kiosk_secret, references[:20])
    asyncio.run(closed_loop(stack.http_url, warm, concurrency=4, max_seconds=20))
    drain_tasks()
    requests = kiosk_requests(stack.kiosk_secret, references[20:])
    return asyncio.run(closed_loop(stack.http_url, requests, concurrency=4, max_seconds=60))


def _timed_command(stack, *args: str, timeout: float = 900) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB, exit status) of one `manage.py` run."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=stack.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"manage.py {' '.join(args)} took more than {timeout} s")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"manage.py {' '.join(args)}: {proc.stderr.read()[-2000:]!r}")
    proc.stderr.close()
    return elapsed, usage.ru_maxrss, proc.returncode


def _command_available(stack, name: str) -> bool:
    out = stack.manage("help", "--commands")
    return name in out.split()


def growth(ctx: Context, make_stack) -> list[Row]:
    from django.db import connection

    from bench.fixtures import (
        World,
        close_connections,
        expired_pending_load,
        growth_load,
        use_database,
    )

    big = ctx.n(50_000, 1_000_000)
    small = 1_000
    expire_small, expire_big = ctx.n(5_000, 100_000), ctx.n(50_000, 1_000_000)
    requests = ctx.n(100, 400)
    stack = make_stack("growth")
    rows: list[Row] = []
    detail: dict = {}
    try:
        use_database(stack.env["DATABASE_URL"])
        world = World(printer_url=ctx.printer.url)
        stack.start()
        growth_load(world, target=small - requests - 40)
        detail["small"] = {"sessions_before": small}
        few = _webhook_p50(ctx, stack, world, requests)
        monitor = _command_available(stack, "monitor_payments")
        if monitor:
            t_small = _timed_command(stack, "monitor_payments", "check")[0]
        started = time.perf_counter()
        loaded = growth_load(world, target=big - requests - 40)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        detail["load_seconds"] = round(time.perf_counter() - started, 1)
        detail["loaded"] = loaded
        many = _webhook_p50(ctx, stack, world, requests)
        detail["webhook_small"] = few.as_dict()
        detail["webhook_big"] = many.as_dict()
        ratio_ok = few.ms(50) and many.ms(50) / few.ms(50) <= 1.2
        label = f"{big // 1000}k" if big < 1_000_000 else "1M"
        rows.append(
            Row(f"4 growth: webhook p50 at {label} sessions", "p50", "ms", many.ms(50),
                few.ms(50), "p50 at 1k sessions", "ratio ≤ 1.2", bool(ratio_ok),
                f"p99 {many.ms(99):.0f} vs {few.ms(99):.0f} ms")
        )  # fmt: skip
        stack.stop()  # the periodic jobs must not expire the backlog below by themselves
        if monitor:
            t_big, rss, code = _timed_command(stack, "monitor_payments", "check")
            detail["monitor"] = {"seconds_small": round(t_small, 2), "seconds_big": round(t_big, 2),
                                 "peak_rss_mib": round(rss / 1024, 1), "exit": code}  # fmt: skip
            rows.append(
                Row(f"4 growth: monitor_payments check, {label} sessions", "wall time", "s",
                    t_big, t_small, "same at 1k", "< 10 s", t_big < 10)
            )  # fmt: skip
        else:
            rows.append(Row("4 growth: monitor_payments check", "wall time", "s", None,
                            note="command not available"))  # fmt: skip
        if _command_available(stack, "expire_payment_sessions"):
            expired_pending_load(world, count=expire_small)
            close_connections()
            t1, rss1, _ = _timed_command(stack, "expire_payment_sessions")
            expired_pending_load(world, count=expire_big)
            close_connections()
            t2, rss2, _ = _timed_command(stack, "expire_payment_sessions")
            detail["expire"] = {
                "small": {"sessions": expire_small, "seconds": round(t1, 1),
                          "peak_rss_mib": round(rss1 / 1024, 1)},
                "big": {"sessions": expire_big, "seconds": round(t2, 1),
                        "peak_rss_mib": round(rss2 / 1024, 1)},
            }  # fmt: skip
            big_label = f"{expire_big // 1000}k" if expire_big < 1_000_000 else "1M"
            rows.append(
                Row(f"4 growth: expire_payment_sessions, {big_label} due", "peak RSS", "MiB",
                    rss2 / 1024, rss1 / 1024, f"at {expire_small // 1000}k",
                    "ratio ≤ 1.2 (flat)", rss2 / rss1 <= 1.2,
                    f"{t2:.0f} s vs {t1:.0f} s")
            )  # fmt: skip
        else:
            rows.append(Row("4 growth: expire_payment_sessions", "peak RSS", "MiB", None,
                            note="command not available"))  # fmt: skip
    finally:
        ctx.details["growth"] = detail
        close_connections()
        stack.close()
    return rows
