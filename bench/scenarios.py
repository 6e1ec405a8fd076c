"""The benchmarks. Each measures Confirma and its baseline in the same run, on the same
stack, and returns table rows plus the details kept in the results file.

Orchestration is synchronous (it uses the ORM); load phases run in `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.loadgen import (
    Request,
    SocketPool,
    Summary,
    closed_loop,
    loopback_address,
    open_loop,
    percentile,
    spread,
    windows,
)
from bench.stack import PROXY_HEADERS, ROOT, WaitSampler, cpu_seconds
from notifications.audiences import audience_role

KIOSK_PATH = "/webhooks/kiosk/"
AUDIENCE = audience_role("operator")  # what the ticket flow tells operators (ticket.created)


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
    # Tickets per second the webhook workers confirmed (3.), for the overload phase (5.).
    capacity: float | None = None

    def n(self, quick: int, full: int) -> int:
        return quick if self.quick else full


# --- helpers ---------------------------------------------------------------------------------


def kiosk_requests(
    secret: str, references: list[str], *, msg_ids: list[str] | None = None
) -> list[Request]:
    """Signed kiosk notifications ("paid") for the given sessions, as the terminal sends:
    one payment per session (its transaction id follows from the reference, so sending a
    session's notification again is the same payment, not a second one); `msg_ids` (one
    per reference) fixes their Standard Webhooks message ids."""
    from bench.fixtures import SERVICE_PRICE
    from payments.providers.kiosk import kiosk_notification

    out = []
    for index, reference in enumerate(references):
        headers, body = kiosk_notification(
            secret=secret, reference=reference, amount=str(SERVICE_PRICE), currency="BRL",
            msg_id=msg_ids[index] if msg_ids else None,
            transaction_id=transaction_id(reference),
        )  # fmt: skip
        out.append(Request(KIOSK_PATH, body, {**headers, **PROXY_HEADERS}, key=reference))
    return out


def transaction_id(reference: str) -> str:
    """The terminal's transaction id for the payment of session `reference`."""
    return "tx_" + reference.removeprefix("ps_")


def insert_requests(count: int, bodies: list[bytes] | None = None) -> list[Request]:
    """Requests to the bare INSERT+COMMIT endpoint; with `bodies`, those bodies in turn."""
    body = b'{"status": "paid", "reference": "ps_baseline"}'
    headers = {"content-type": "application/json", **PROXY_HEADERS}
    return [
        Request("/bench/insert/", bodies[i % len(bodies)] if bodies else body, headers)
        for i in range(count)
    ]


def padded_bodies(count: int, size: int) -> list[bytes]:
    """`count` different JSON bodies of exactly `size` bytes, mostly random (so neither
    compression nor a cache makes them cheaper than an attacker's)."""
    import base64
    import json

    out = []
    for index in range(count):
        head = json.dumps({"reference": f"ps_{secrets.token_hex(12)}", "n": index, "pad": ""})
        room = size - len(head)
        if room < 0:
            raise ValueError("size is too small for the body's fields")
        pad = base64.b64encode(secrets.token_bytes(room)).decode()[:room]
        body = (head[:-2] + pad + head[-2:]).encode()
        assert len(body) == size
        out.append(body)
    return out


def unsigned_requests(count: int, bodies: list[bytes]) -> list[Request]:
    """Kiosk webhooks the signature check must refuse: in turn without any Standard
    Webhooks headers, and signed with a secret that is not the kiosk's."""
    from standardwebhooks.webhooks import Webhook

    wrong = Webhook("whsec_" + base64_secret())
    now = datetime.now(UTC)
    out = []
    for index in range(count):
        body = bodies[index % len(bodies)]
        headers = {"content-type": "application/json", **PROXY_HEADERS}
        if index % 2:
            msg_id = f"msg_{secrets.token_hex(16)}"
            headers.update({
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": wrong.sign(msg_id, now, body.decode()),
            })  # fmt: skip
        out.append(Request(KIOSK_PATH, body, headers))
    return out


def base64_secret() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(24)).decode()


# Where refused requests come from: (sender, request number) → loopback source address.
SOURCE_PATTERNS = {
    # What Confirma sees behind one proxy (it counts refusals by REMOTE_ADDR).
    "1 address": lambda sender, n: "127.0.0.1",
    "16 addresses": lambda sender, n: loopback_address(sender % 16),
    # A new address for every request: one WebhookRefusal row each, the most bytes.
    "an address per request": lambda sender, n: loopback_address(10_000 + n),
}


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


# A failed delivery due again within this many seconds is waited for between phases (it
# would otherwise be retried in the middle of the next one).
RETRY_HORIZON_SECONDS = 300


def _busy(horizon: float = 0, *, tasks: bool = True) -> bool:
    """A delivery waits (received, or failed and due again within `horizon` seconds) or,
    with `tasks`, a task is due."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult, get_date_max

    from payments.models import DeliveryStatus, WebhookDelivery

    now = timezone.now()
    due = DBTaskResult.objects.filter(status="READY").filter(
        Q(run_after=get_date_max()) | Q(run_after__lte=now)
    )
    waiting = WebhookDelivery.objects.filter(
        Q(status=DeliveryStatus.RECEIVED)
        | Q(
            status=DeliveryStatus.FAILED,
            next_attempt_at__lte=now + timedelta(seconds=horizon),
        )
    )
    return (tasks and due.exists()) or waiting.exists()


def drain_tasks(max_seconds: float = 600) -> bool:
    """Wait until the servers are idle: no webhook delivery received and not yet
    processed, no failed one due again (now or within RETRY_HORIZON_SECONDS), and no
    task due, twice in a row (what an earlier phase left, such as printing, retries or
    requests still queued after the client gave up, must not load the next one)."""
    deadline = time.monotonic() + max_seconds
    quiet = 0
    while time.monotonic() < deadline:
        quiet = 0 if _busy(RETRY_HORIZON_SECONDS) else quiet + 1
        if quiet >= 2:
            return True
        time.sleep(0.5)
    return False


def maybe_profile(ctx: Context, name: str, seconds: int, roles: tuple[str, ...] | None = None):
    if not ctx.profile:
        return None
    from bench.profiling import Profiler

    pids = ctx.stack.pids()
    if roles is not None:
        pids = {role: found for role, found in pids.items() if role in roles}
    return Profiler(ctx.outdir, name, pids, seconds)


def _summary_rows(bench: str, what: str, mine: Summary, base: Summary, base_label: str):
    return [
        Row(bench, f"{what} p50", "ms", mine.ms(50), base.ms(50), base_label),
        Row(bench, f"{what} p99", "ms", mine.ms(99), base.ms(99), base_label),
    ]


def ratio_at_least(value: float | None, baseline: float | None, target: float) -> bool | None:
    """value / baseline ≥ target; None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return value / baseline >= target


def ratio_at_most(value: float | None, baseline: float | None, target: float) -> bool | None:
    """value / baseline ≤ target; None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return value / baseline <= target


def _warm(stack, world) -> None:
    """Every gunicorn thread has its database connection and code paths warm."""
    url = stack.http_url
    refs = world.ticket_sessions(64)
    asyncio.run(closed_loop(url, insert_requests(64), concurrency=16, max_seconds=20))
    asyncio.run(
        closed_loop(url, kiosk_requests(stack.kiosk_secret, refs), concurrency=16, max_seconds=20)
    )


def _tickets_after(pk: int) -> int:
    from tickets.models import Ticket

    return Ticket.objects.filter(pk__gt=pk).count()


def _await_tickets(first_pk: int, expected: int, max_seconds: float) -> tuple[int, float]:
    """Wait until `expected` tickets exist past `first_pk` (or `max_seconds` pass);
    (how many, seconds waited)."""
    started = time.perf_counter()
    made = 0
    while time.perf_counter() - started < max_seconds:
        made = _tickets_after(first_pk)
        if made >= expected:
            break
        time.sleep(0.1)
    return made, time.perf_counter() - started


def _last_ticket_pk() -> int:
    from tickets.models import Ticket

    return Ticket.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def session_checks(references: list[str]) -> dict:
    """Exactly-once, checked in SQL over the given sessions: how many have no ticket, and
    how many were done twice (two tickets, two 'completed' audit rows, two print jobs for
    one ticket, two deliveries processed for one session); and how many needed their
    fulfilment tried again (it failed the first time)."""
    from django.db import connection

    from payments.models import PaymentAudit, PaymentSession, WebhookDelivery
    from tickets.models import PrintJob, Ticket

    t = {
        "session": PaymentSession._meta.db_table,
        "ticket": Ticket._meta.db_table,
        "audit": PaymentAudit._meta.db_table,
        "job": PrintJob._meta.db_table,
        "delivery": WebhookDelivery._meta.db_table,
    }
    # Only the models' own table names are formatted in; the references are a parameter.
    sql = f"""
        WITH s AS (SELECT id FROM {t["session"]} WHERE reference = ANY(%s)),
        tk AS (SELECT payment_session_id AS sid, count(*) AS n FROM {t["ticket"]}
               WHERE payment_session_id IN (SELECT id FROM s) GROUP BY payment_session_id)
        SELECT
          (SELECT count(*) FROM s),
          (SELECT count(*) FROM s WHERE id NOT IN (SELECT sid FROM tk)),
          (SELECT count(*) FROM tk WHERE n > 1),
          (SELECT count(*) FROM (SELECT session_id FROM {t["audit"]}
             WHERE session_id IN (SELECT id FROM s) AND action = 'completed'
             GROUP BY session_id HAVING count(*) > 1) a),
          (SELECT count(*) FROM (SELECT j.ticket_id FROM {t["job"]} j
             JOIN {t["ticket"]} x ON x.id = j.ticket_id
             WHERE x.payment_session_id IN (SELECT id FROM s)
             GROUP BY j.ticket_id HAVING count(*) > 1) p),
          (SELECT count(*) FROM (SELECT session_id FROM {t["delivery"]}
             WHERE session_id IN (SELECT id FROM s) AND status = 'processed'
             GROUP BY session_id HAVING count(*) > 1) d),
          (SELECT count(*) FROM {t["session"]} WHERE id IN (SELECT id FROM s)
             AND fulfilment_attempts > 1)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(references)])
        row = cursor.fetchone()
    keys = (
        "sessions", "without_ticket", "two_tickets", "two_completed_audits",
        "two_print_jobs", "two_processed_deliveries", "fulfilment_retried",
    )  # fmt: skip
    out = dict(zip(keys, row, strict=True))
    # Done twice: what the customer or staff would see twice (two processed deliveries for
    # one session are reported beside it: an outcome label, not a second effect).
    out["doubled"] = sum(out[k] for k in keys[2:5])
    return out


def _deliveries_by_status(since_pk: int) -> dict[str, int]:
    from django.db.models import Count

    from payments.models import WebhookDelivery

    rows = (
        WebhookDelivery.objects.filter(pk__gt=since_pk)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["status"]: row["n"] for row in rows}


def _last_delivery_pk() -> int:
    from payments.models import WebhookDelivery

    return WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- 1. webhook intake ----------------------------------------------------------------------


def webhook_intake(ctx: Context) -> list[Row]:
    """Signed notifications acknowledged per second by the intake alone (the webhook
    workers stopped, so nothing else competes for the cores), against INSERT+COMMIT."""
    stack, world = ctx.stack, ctx.world
    count, seconds, concurrency = ctx.n(800, 4000), ctx.n(10, 60), 32
    references = world.ticket_sessions(count)
    url = stack.http_url
    drain_tasks()
    _warm(stack, world)
    drain_tasks()
    stack.workers_stop()
    since = _last_delivery_pk()
    with WaitSampler(stack.env["DATABASE_URL"]) as base_waits:
        base = asyncio.run(
            closed_loop(url, insert_requests(count), concurrency=concurrency, max_seconds=seconds)
        )
    requests = kiosk_requests(stack.kiosk_secret, references)
    profiler = maybe_profile(ctx, "webhook-intake", min(seconds, 20), ("gunicorn",))
    with WaitSampler(stack.env["DATABASE_URL"]) as waits:
        mine = asyncio.run(closed_loop(url, requests, concurrency=concurrency, max_seconds=seconds))
    if profiler:
        ctx.profiles["webhook-intake"] = profiler.finish()
    stored = _deliveries_by_status(since)
    # The workers take what was stored; every acknowledged notification must be confirmed.
    first_pk = _last_ticket_pk()
    stack.workers_start(stack.webhook_workers)
    made, waited = _await_tickets(first_pk, len(set(mine.ok_keys)), ctx.n(60, 180))
    drained = drain_tasks()
    after = _deliveries_by_status(since)
    checks = session_checks(mine.ok_keys)
    accepted = mine.answers.get("accepted", 0)
    ctx.details["webhook_intake"] = {
        "concurrency": concurrency,
        "workers_during_measurement": 0,
        "confirma": mine.as_dict(),
        "baseline_insert_commit": base.as_dict(),
        "deliveries_stored": stored,
        "deliveries_afterwards": after,
        "tickets_after_starting_workers": {"tickets": made, "seconds": round(waited, 1)},
        "backend_waits": waits.means(),
        "baseline_backend_waits": base_waits.means(),
        "drained_afterwards": drained,
        "acknowledged_sessions_checked": checks,
    }
    # Judged on what intake answered; whether the workers then confirmed everything is
    # in the note (and judged by the capacity and overload phases).
    clean = mine.errors == 0 and accepted == mine.count
    confirmed = checks["sessions"] - checks["without_ticket"]
    note = (
        f"{mine.count} acknowledged ({accepted} accepted), {mine.errors} errors; webhook "
        f"workers stopped while measured; afterwards {confirmed} of {checks['sessions']} "
        f"got their ticket, {checks['doubled']} doubled, deliveries {after}"
    )
    rate_ok = ratio_at_least(mine.rate, base.rate, 0.7)
    p99_ok = ratio_at_most(mine.ms(99), base.ms(99), 3.0)
    bench = "1 webhook intake (32 senders)"
    return [
        Row(bench, "acknowledged", "notif/s", mine.rate, base.rate, "INSERT+COMMIT",
            "ratio ≥ 0.7", None if rate_ok is None else rate_ok and clean, note),
        Row(bench, "ack p99", "ms", mine.ms(99), base.ms(99), "INSERT+COMMIT",
            "ratio ≤ 3", p99_ok,
            f"database backends by wait: intake {top_waits(waits.means())}; INSERT+COMMIT "
            f"{top_waits(base_waits.means())}"),
        Row(bench, "ack p50", "ms", mine.ms(50), base.ms(50), "INSERT+COMMIT"),
    ]  # fmt: skip


# --- 2. refused requests ------------------------------------------------------------------


def _stored_bytes() -> int:
    """Bytes on disk of the refusal and delivery tables, with their indexes and TOAST."""
    from django.db import connection

    from payments.models import WebhookDelivery, WebhookRefusal

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size(%s::regclass) + pg_total_relation_size(%s::regclass)",
            [WebhookRefusal._meta.db_table, WebhookDelivery._meta.db_table],
        )
        return cursor.fetchone()[0]


def _refusals_counted() -> int:
    from django.db.models import Sum

    from payments.models import WebhookRefusal

    return WebhookRefusal.objects.aggregate(total=Sum("count"))["total"] or 0


def webhook_refusals(ctx: Context) -> list[Row]:
    """Unsigned 64 KB requests to the kiosk webhook from several loopback source patterns:
    refused per second against INSERT+COMMIT of the same bodies from the same addresses,
    and what the refusals leave on disk."""
    from payments.models import WebhookDelivery, WebhookRefusal

    stack = ctx.stack
    count, seconds, concurrency = ctx.n(1500, 6000), ctx.n(8, 40), 32
    size = 64 * 1024
    bodies = padded_bodies(16, size)
    url = stack.http_url
    drain_tasks()
    # Warm: every gunicorn thread has its connection, both paths have run.
    asyncio.run(closed_loop(url, insert_requests(64, bodies), concurrency=16, max_seconds=20))
    asyncio.run(
        closed_loop(url, unsigned_requests(64, bodies), concurrency=16, max_seconds=20,
                    ok=lambda status: status == 401)
    )  # fmt: skip
    rows: list[Row] = []
    details: dict = {"body_bytes": size, "concurrency": concurrency}
    for number, (label, source) in enumerate(SOURCE_PATTERNS.items()):
        base = asyncio.run(
            closed_loop(url, insert_requests(count, bodies), concurrency=concurrency,
                        max_seconds=seconds, source=source)
        )  # fmt: skip
        drain_tasks()
        requests = unsigned_requests(count, bodies)
        deliveries_before = WebhookDelivery.objects.count()
        rows_before = WebhookRefusal.objects.count()
        counted_before = _refusals_counted()
        bytes_before = _stored_bytes()
        profiler = None
        if number == 0:
            profiler = maybe_profile(ctx, "webhook-refusals", min(seconds, 20), ("gunicorn",))
        with WaitSampler(stack.env["DATABASE_URL"]) as waits:
            mine = asyncio.run(
                closed_loop(url, requests, concurrency=concurrency, max_seconds=seconds,
                            ok=lambda status: status == 401, source=source)
            )  # fmt: skip
        if profiler:
            ctx.profiles["webhook-refusals"] = profiler.finish()
        # The servers add refusals up in memory and write them every
        # WEBHOOK_REFUSAL_FLUSH_SECONDS (1 s): wait for the last interval's.
        settle = time.monotonic() + 5
        while _refusals_counted() - counted_before < mine.count and time.monotonic() < settle:
            time.sleep(0.2)
        grown = _stored_bytes() - bytes_before
        counted = _refusals_counted() - counted_before
        new_rows = WebhookRefusal.objects.count() - rows_before
        new_deliveries = WebhookDelivery.objects.count() - deliveries_before
        per_refusal = grown / mine.count if mine.count else None
        details[label] = {
            "confirma": mine.as_dict(),
            "baseline_insert_commit": base.as_dict(),
            "bytes_grown": grown,
            "bytes_per_refusal": _r(per_refusal),
            "refusals_counted": counted,
            "refusal_rows_added": new_rows,
            "deliveries_added": new_deliveries,
            "backend_waits": waits.means(),
        }
        honest = mine.errors == 0 and counted == mine.count and new_deliveries == 0
        bench = f"2 refusals: 64 KB unsigned, {label}"
        rate_ok = ratio_at_least(mine.rate, base.rate, 1.0)
        rows += [
            Row(bench, "refused", "req/s", mine.rate, base.rate, "INSERT+COMMIT, same bodies",
                "ratio ≥ 1.0", None if rate_ok is None else rate_ok and honest,
                f"{mine.count} refused 401 ({mine.errors} other), {counted} counted in "
                f"{new_rows} new refusal rows, {new_deliveries} deliveries stored; p99 "
                f"{_fmt_ms(mine.ms(99))} vs {_fmt_ms(base.ms(99))}; database backends by "
                f"wait {top_waits(waits.means())}"),
            Row(bench, "stored per refusal", "bytes", per_refusal, target="≤ 4096",
                passed=None if per_refusal is None else per_refusal <= 4096,
                note=f"{grown} bytes of refusal + delivery tables for {mine.count} refusals"),
        ]  # fmt: skip
    ctx.details["webhook_refusals"] = details
    return rows


def top_waits(means: dict[str, float], count: int = 4) -> str:
    """The `count` wait events with the most backends, as text ("Lock:object 3.1, …")."""
    return ", ".join(f"{name} {mean:g}" for name, mean in list(means.items())[:count]) or "-"


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}/s"


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


# --- 3. confirmation capacity ------------------------------------------------------------------


def _confirm_stored(
    ctx: Context, references: list[str], *, max_seconds: float, workers: int | None = None
) -> dict:
    """Store a notification for each session with the workers stopped, then start
    `workers` of them (default: the layout's number) and time stored → committed tickets
    (from the moment they are all listening and let go to the last ticket counted). The
    layout's workers run again afterwards."""
    stack = ctx.stack
    workers = workers or stack.webhook_workers
    stack.workers_stop()
    since = _last_delivery_pk()
    first_pk = _last_ticket_pk()
    intake = asyncio.run(
        closed_loop(stack.http_url, kiosk_requests(stack.kiosk_secret, references),
                    concurrency=32, max_seconds=max_seconds)
    )  # fmt: skip
    stored = intake.answers.get("accepted", 0)
    profiler = None
    deadlocks = stack.deadlocks()
    # The workers start while the harness holds the deliveries table (EXCLUSIVE: reads
    # go on, claims wait): all of them are listening and waiting on their first claim
    # when the clock starts, so Python's start-up is not timed and no worker starts
    # before the others. What was confirmed before (the periodic safety net) is not
    # the workers'.
    import psycopg

    with psycopg.connect(stack.env["DATABASE_URL"]) as hold:
        hold.execute("LOCK TABLE payments_webhookdelivery IN EXCLUSIVE MODE")
        started, all_listening = stack.workers_start(workers)
        before = _tickets_after(first_pk)
        first_listening = time.perf_counter()  # the clock starts as the lock goes
    if ctx.profile and workers == stack.webhook_workers:
        expected = max(5, min(30, int(stored / 100) + 5))
        profiler = maybe_profile(
            ctx, "confirmation-capacity", expected, ("webhook_worker", "db_worker")
        )
    done, made, deadline = None, 0, time.perf_counter() + max_seconds + 60
    with WaitSampler(stack.env["DATABASE_URL"]) as waits:
        while time.perf_counter() < deadline:
            made = _tickets_after(first_pk)
            if made >= stored:
                done = time.perf_counter()
                break
            time.sleep(0.05)
    if profiler:
        ctx.profiles["confirmation-capacity"] = profiler.finish()
    seconds = (done or time.perf_counter()) - first_listening
    by_workers = made - before
    time.sleep(1)  # the statistics' lag
    deadlocks = stack.deadlocks() - deadlocks
    if workers != stack.webhook_workers:
        stack.workers_stop()
        stack.workers_start(stack.webhook_workers)
    from django.db.models import Max, Min

    from tickets.models import Ticket

    span = Ticket.objects.filter(pk__gt=first_pk).aggregate(
        a=Min("created_at"), b=Max("created_at")
    )
    db_span = (span["b"] - span["a"]).total_seconds() if span["a"] and span["b"] else None
    return {
        "intake": intake.as_dict(),
        "stored": stored,
        "tickets": made,
        "confirmed_before_the_workers_started": before,
        "all_confirmed": done is not None,
        "deadlocks": deadlocks,
        "workers": workers,
        "workers_start_spread_s": round(all_listening - started, 3),
        "seconds_first_listening_to_last_ticket": round(seconds, 3),
        "rate": by_workers / seconds if seconds > 0 else None,
        "ticket_created_at_span_s": None if db_span is None else round(db_span, 3),
        # Mean number of active database backends per wait event while the workers ran.
        "backend_waits": waits.means(),
        "since_delivery_pk": since,
    }


def confirmation_capacity(ctx: Context) -> list[Row]:
    """Paid notifications → committed tickets per second by the webhook workers alone:
    deliveries stored first (workers stopped), then the workers started and timed."""
    from tickets.models import PrintJob

    stack, world = ctx.stack, ctx.world
    count = ctx.n(1000, 5000)
    drain_tasks()
    _warm(stack, world)
    drain_tasks()
    base = asyncio.run(
        closed_loop(stack.http_url, insert_requests(count), concurrency=32,
                    max_seconds=ctx.n(10, 30))
    )  # fmt: skip
    references = world.ticket_sessions(count)
    measured = _confirm_stored(ctx, references, max_seconds=ctx.n(20, 90))
    # The task worker prints what the workers confirmed: how fast does it work through it?
    backlog = PrintJob.objects.exclude(status="printed").count()
    started = time.monotonic()
    drained = drain_tasks()
    drain_seconds = time.monotonic() - started
    printed = backlog - PrintJob.objects.exclude(status="printed").count()
    checks = session_checks(references[: measured["stored"]])
    statuses = _deliveries_by_status(measured["since_delivery_pk"])
    rate = measured["rate"]
    # For information: does a second worker add capacity?
    single = None
    if stack.webhook_workers != 1:
        single = _confirm_stored(
            ctx, world.ticket_sessions(count // 2), max_seconds=ctx.n(20, 90), workers=1
        )
        drain_tasks()
    # The overload phase sends three times the best of these: the most the workers were
    # seen to do (a layout slowed by lock waits must not make the overload a light load).
    ctx.capacity = max(rate or 0, (single or {}).get("rate") or 0) or None
    ctx.details["confirmation_capacity"] = {
        **measured,
        "one_worker": single,
        "capacity_for_overload": ctx.capacity,
        "baseline_insert_commit": base.as_dict(),
        "deliveries_by_status": statuses,
        "sessions_checked": checks,
        "print_backlog": backlog,
        "print_backlog_drained": drained,
        "print_backlog_seconds": round(drain_seconds, 1),
    }
    clean = measured["all_confirmed"] and checks["doubled"] == 0
    rate_ok = ratio_at_least(rate, base.rate, 0.3)
    bench = f"3 confirmation capacity ({stack.webhook_workers} workers)"
    return [
        Row(bench, "stored → ticket", "tickets/s", rate, base.rate, "INSERT+COMMIT",
            "ratio ≥ 0.3", None if rate_ok is None else rate_ok and clean,
            f"{measured['tickets']} of {measured['stored']} stored notifications confirmed in "
            f"{measured['seconds_first_listening_to_last_ticket']:.1f} s (all workers "
            f"listening, then released → last ticket; "
            f"{measured['confirmed_before_the_workers_started']} "
            f"before by the periodic retry job, not counted); deliveries {statuses}; "
            f"{checks['doubled']} doubled; "
            f"{measured['deadlocks']} deadlocks, {checks['fulfilment_retried']} fulfilments "
            f"retried; database backends by wait {top_waits(measured['backend_waits'])}"),
        *(
            []
            if single is None
            else [
                Row("3 confirmation capacity (1 worker)", "stored → ticket", "tickets/s",
                    single["rate"], base.rate, "INSERT+COMMIT",
                    note=f"{single['tickets']} of {single['stored']} confirmed in "
                    f"{single['seconds_first_listening_to_last_ticket']:.1f} s; "
                    f"{single['deadlocks']} deadlocks; waits {top_waits(single['backend_waits'])}")
            ]
        ),
        Row(bench, "print backlog drained", "jobs/s",
            printed / drain_seconds if drain_seconds > 0.5 and printed > 0 else None,
            note=f"{printed} of {backlog} print jobs still queued after the last ticket, in "
            f"{drain_seconds:.0f} s by one db_worker"),
    ]  # fmt: skip


# --- 4. webhook → screen latency ------------------------------------------------------------


def latency_target_ms(rate: float) -> float | None:
    """The p99 send → screen target at `rate` notifications per second (None: information
    only)."""
    if rate >= 100:
        return 250.0
    if rate >= 50:
        return 100.0
    return None


def _cookie_headers(cookies: list[str]) -> list[dict[str, str]]:
    return [{"Cookie": c, "Origin": "http://127.0.0.1"} for c in cookies]


def screen_latency(ctx: Context, rate: float = 100.0) -> list[Row]:
    """100 operators' screens; notifications at `rate` per second, each through intake,
    a webhook worker and the push to the screens (targets at 100/s and 50/s; a lower rate
    is reported for information)."""
    stack, world = ctx.stack, ctx.world
    clients, seconds = 100, ctx.n(4, 20)
    target = latency_target_ms(rate)
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
            frames["base"] = pool.frames
            cpu["base"] = cpu_seconds(daphne)
            base = await open_loop(
                stack.http_url, group_send_requests(1, count), rate=rate,
                max_seconds=seconds, sent_at=sent_base, drain_seconds=ctx.n(10, 30),
            )  # fmt: skip
            await pool.wait_for(list(sent_base), max_seconds=ctx.n(8, 20))
            frames["base"] = pool.frames - frames["base"]
            cpu["base"] = cpu_seconds(daphne) - cpu["base"]
            base_lat, base_missing = pool.latencies(sent_base)
            await asyncio.to_thread(drain_tasks)
            frames["mine"] = pool.frames
            cpu["mine"] = cpu_seconds(daphne)
            sent: dict[str, float] = {}
            requests = kiosk_requests(stack.kiosk_secret, references)
            deadlocks["before"] = stack.deadlocks()
            profiler = maybe_profile(ctx, "screen-latency", seconds)
            mine = await open_loop(
                stack.http_url, requests, rate=rate, max_seconds=seconds, sent_at=sent,
                drain_seconds=ctx.n(10, 30),
            )  # fmt: skip
            await pool.wait_for(list(sent), max_seconds=ctx.n(8, 20))
            frames["mine"] = pool.frames - frames["mine"]
            cpu["mine"] = cpu_seconds(daphne) - cpu["mine"]
            if profiler:
                ctx.profiles["screen-latency"] = await asyncio.to_thread(profiler.finish)
            lat, missing = pool.latencies(sent)
            return opened, base, base_lat, base_missing, mine, lat, missing

    deadlocks: dict[str, int] = {}
    frames: dict[str, int] = {}
    # What the WebSocket servers spend per frame they deliver (CPU time, which the
    # machine's other load moves far less than latency).
    cpu: dict[str, float] = {}
    daphne = stack.pids()["daphne"]
    opened, base, base_lat, base_missing, mine, lat, missing = asyncio.run(run())
    per_screen = {
        k: round(frames[k] / (n * opened), 2) if n and opened else None
        for k, n in (("mine", mine.count), ("base", base.count))
    }
    time.sleep(1)  # the statistics' lag
    deadlocks["during"] = stack.deadlocks() - deadlocks["before"]
    p = {
        k: (None if percentile(v, q) is None else percentile(v, q) * 1000)
        for k, v, q in (
            ("mine50", lat, 50), ("mine99", lat, 99), ("base50", base_lat, 50),
            ("base99", base_lat, 99),
        )
    }  # fmt: skip
    per_frame_us = {k: round(cpu[k] / frames[k] * 1e6, 1) if frames[k] else None for k in cpu}
    ctx.details[f"screen_latency_{rate:g}_per_s"] = {
        "clients_open": opened,
        "daphne_cpu_us_per_frame": per_frame_us,
        "rate_per_s": rate,
        "seconds": seconds,
        "deadlocks": deadlocks["during"],
        "frames_per_notification_per_screen": per_screen,
        "confirma": {"requests": mine.as_dict(), "deliveries": len(lat), "missing": missing,
                     "p50_ms": _r(p["mine50"]), "p99_ms": _r(p["mine99"])},
        "baseline_group_send": {"requests": base.as_dict(), "deliveries": len(base_lat),
                                "missing": base_missing, "p50_ms": _r(p["base50"]),
                                "p99_ms": _r(p["base99"])},
    }  # fmt: skip
    passed = None
    if target is not None and p["mine99"] is not None:
        passed = p["mine99"] <= target and missing <= base_missing and mine.errors == 0
    note = (
        f"{opened} clients, {mine.count}+{mine.errors} err notifications (ack p99 "
        f"{_fmt_ms(mine.ms(99))}); missing deliveries {missing} vs baseline {base_missing}; "
        f"{deadlocks['during']} deadlocks; {per_screen['mine']} frames per notification per "
        f"screen (baseline {per_screen['base']}); daphne CPU {per_frame_us['mine']} µs per "
        f"frame (baseline {per_frame_us['base']} µs)"
    )
    bench = f"4 webhook→screen (100 clients, {rate:g}/s)"
    return [
        Row(bench, "p99", "ms", p["mine99"], p["base99"], "group_send only",
            f"≤ {target:.0f} ms" if target else "", passed, note),
        Row(bench, "p50", "ms", p["mine50"], p["base50"], "group_send only"),
    ]  # fmt: skip


# --- 6. fan-out ------------------------------------------------------------------------------


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
        Row("6 fan-out (500 clients)", "p99 send→all", "ms", mine99, base99, "group_send only",
            "< 250 ms", passed, f"{opened} clients, {rounds} events, {missing} missing"),
    ]  # fmt: skip


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


# --- 6. paid → printed ------------------------------------------------------------------------


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
    deadlocks = stack.deadlocks()
    mine, lat, missing = measure(kiosk_requests(stack.kiosk_secret, references))
    time.sleep(1)  # the statistics' lag
    deadlocks = stack.deadlocks() - deadlocks
    mine99, base99 = _ms(percentile(lat, 99)), _ms(percentile(base_lat, 99))
    ctx.details["paid_to_printed"] = {
        "rate_per_s": rate,
        "deadlocks": deadlocks,
        "confirma": {"requests": mine.as_dict(), "printed": len(lat), "missing": missing,
                     "p50_ms": _r(_ms(percentile(lat, 50))), "p99_ms": _r(mine99)},
        "baseline_print_task": {"requests": base.as_dict(), "printed": len(base_lat),
                                "missing": base_missing,
                                "p50_ms": _r(_ms(percentile(base_lat, 50))), "p99_ms": _r(base99)},
    }  # fmt: skip
    passed = None if mine99 is None else (mine99 < 500 and missing == 0)
    return [
        Row("6 paid→printed", "p99", "ms", mine99, base99, "bare print task", "< 500 ms",
            passed, f"{len(lat)}/{count} printed; {deadlocks} deadlocks meanwhile"),
        Row("6 paid→printed", "p50", "ms", _ms(percentile(lat, 50)),
            _ms(percentile(base_lat, 50)), "bare print task"),
    ]  # fmt: skip


# --- 6. growth -------------------------------------------------------------------------------


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
            Row(f"6 growth: webhook ack p50 at {label} sessions", "p50", "ms", many.ms(50),
                few.ms(50), "p50 at 1k sessions", "ratio ≤ 1.2", bool(ratio_ok),
                f"p99 {many.ms(99):.0f} vs {few.ms(99):.0f} ms")
        )  # fmt: skip
        stack.stop()  # the periodic jobs must not expire the backlog below by themselves
        if monitor:
            t_big, rss, code = _timed_command(stack, "monitor_payments", "check")
            detail["monitor"] = {"seconds_small": round(t_small, 2), "seconds_big": round(t_big, 2),
                                 "peak_rss_mib": round(rss / 1024, 1), "exit": code}  # fmt: skip
            rows.append(
                Row(f"6 growth: monitor_payments check, {label} sessions", "wall time", "s",
                    t_big, t_small, "same at 1k", "< 10 s", t_big < 10)
            )  # fmt: skip
        else:
            rows.append(Row("6 growth: monitor_payments check", "wall time", "s", None,
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
                Row(f"6 growth: expire_payment_sessions, {big_label} due", "peak RSS", "MiB",
                    rss2 / 1024, rss1 / 1024, f"at {expire_small // 1000}k",
                    "ratio ≤ 1.2 (flat)", rss2 / rss1 <= 1.2,
                    f"{t2:.0f} s vs {t1:.0f} s")
            )  # fmt: skip
        else:
            rows.append(Row("6 growth: expire_payment_sessions", "peak RSS", "MiB", None,
                            note="command not available"))  # fmt: skip
    finally:
        ctx.details["growth"] = detail
        close_connections()
        stack.close()
    return rows


# --- 5. overload -------------------------------------------------------------------------------


def overload_schedule(references: list[str], *, every: int = 20, later: int = 100) -> list[tuple]:
    """What a provider sends under load: each session's notification once, and for one
    session in `every` an exact repeat (same message id: a retry) and for another a new
    message about the same payment (a re-send), each `later` places after the original.
    Items are (reference, kind) with kind "first", "retry" or "resend"."""
    placed: list[tuple[float, tuple]] = []
    for index, reference in enumerate(references):
        placed.append((index, (reference, "first")))
        if index % every == 0:
            placed.append((index + later + 0.5, (reference, "retry")))
        elif index % every == every // 2:
            placed.append((index + later + 0.5, (reference, "resend")))
    return [item for _, item in sorted(placed, key=lambda pair: pair[0])]


def overload(ctx: Context) -> list[Row]:
    """Three times the measured confirmation capacity, open loop, for 20 s, with the
    workers running: acknowledgements stay fast, nothing is lost or doubled, and the
    backlog drains afterwards."""
    import uuid

    stack, world = ctx.stack, ctx.world
    seconds, factor = 20, 3.0
    note_capacity = ""
    if not ctx.capacity:
        measured = []
        for workers in sorted({stack.webhook_workers, 1}):
            refs = world.ticket_sessions(ctx.n(600, 2000))
            measured.append(_confirm_stored(ctx, refs, max_seconds=60, workers=workers)["rate"])
            drain_tasks()
        ctx.capacity = max((rate or 0 for rate in measured), default=0) or None
        note_capacity = " (measured for this phase)"
    capacity = ctx.capacity or 0
    rate = max(1.0, factor * capacity)
    total = int(rate * seconds)
    sessions = max(1, int(total * 0.9))
    references = world.ticket_sessions(sessions)
    msg_ids = [f"msg_{uuid.uuid4().hex}" for _ in references]
    by_ref = dict(zip(references, msg_ids, strict=True))
    schedule = overload_schedule(references)[:total]
    requests = []
    for reference, kind in schedule:
        msg = by_ref[reference] if kind != "resend" else f"msg_{uuid.uuid4().hex}"
        requests += kiosk_requests(stack.kiosk_secret, [reference], msg_ids=[msg])
    drain_tasks()
    first_pk = _last_ticket_pk()
    since = _last_delivery_pk()
    deadlocks = stack.deadlocks()
    profiler = maybe_profile(ctx, "overload", seconds)
    started = time.perf_counter()
    with WaitSampler(stack.env["DATABASE_URL"]) as waits:
        mine = asyncio.run(
            open_loop(stack.http_url, requests, rate=rate, max_seconds=seconds + 1,
                      max_in_flight=1024, drain_seconds=30)
        )  # fmt: skip
    sent_end = time.perf_counter()
    if profiler:
        ctx.profiles["overload"] = profiler.finish()
    acked = set(mine.ok_keys)
    backlog_at_end = max(0, len(acked) - _tickets_after(first_pk))
    drain_profiler = maybe_profile(ctx, "overload-drain", 20, ("webhook_worker", "db_worker"))
    done = None
    deadline = time.perf_counter() + max(60.0, 4 * len(acked) / max(capacity, 1.0))
    with WaitSampler(stack.env["DATABASE_URL"]) as drain_waits:
        while time.perf_counter() < deadline:
            # Drained: every acknowledged session confirmed, no delivery waiting (the print
            # tasks the tickets queued are the task worker's, reported apart).
            if _tickets_after(first_pk) >= len(acked) and not _busy(tasks=False):
                done = time.perf_counter()
                break
            time.sleep(0.1)
    if drain_profiler:
        ctx.profiles["overload-drain"] = drain_profiler.finish()
    from tickets.models import PrintJob

    print_backlog = PrintJob.objects.exclude(status="printed").count()
    checks = session_checks(sorted(acked))
    statuses = _deliveries_by_status(since)
    time.sleep(1)  # the statistics' lag
    deadlocks = stack.deadlocks() - deadlocks
    per_window = windows(mine.started, mine.latencies, origin=started)
    worst = max((w["p_ms"] for w in per_window), default=None)
    drain_s = None if done is None else max(0.0, done - sent_end)
    drain_rate = backlog_at_end / drain_s if drain_s and backlog_at_end else None
    lost = checks["without_ticket"]
    ctx.details["overload"] = {
        "capacity_per_s": _r(capacity),
        "rate_per_s": _r(rate),
        "seconds": seconds,
        "requests": mine.as_dict(),
        "sent": len(mine.latencies) + mine.errors,
        "kinds": {kind: sum(1 for _, k in schedule if k == kind) for kind in
                  ("first", "retry", "resend")},
        "ack_p99_per_second_ms": per_window,
        "acknowledged_sessions": len(acked),
        "checks": checks,
        "deliveries_by_status": statuses,
        "deadlocks": deadlocks,
        "backend_waits_while_sending": waits.means(),
        "backlog_when_sending_ended": backlog_at_end,
        "print_jobs_still_queued_when_drained": print_backlog,
        "drain_rate_per_s": _r(drain_rate),
        "backend_waits_while_draining": drain_waits.means(),
        "drained": done is not None,
        "drain_seconds_after_last_send": None if drain_s is None else round(drain_s, 1),
    }  # fmt: skip
    bench = f"5 overload: 3× capacity ({rate:.0f}/s, {seconds} s)"
    ack_ok = worst is not None and worst < 100 and mine.errors == 0
    return [
        Row(bench, "ack p99, worst second", "ms", worst, target="< 100 ms", passed=ack_ok,
            note=f"{mine.count} acknowledged {mine.answers}, {mine.errors} errors; overall p99 "
            f"{_fmt_ms(mine.ms(99))}, send lag max {mine.send_lag_max * 1000:.0f} ms; "
            f"capacity {capacity:.0f}/s (the best measured){note_capacity}; database "
            f"backends by wait "
            f"{top_waits(waits.means())}"),
        Row(bench, "lost / doubled", "sessions", float(lost + checks["doubled"]), target="0",
            passed=lost == 0 and checks["doubled"] == 0,
            note=f"{len(acked)} sessions acknowledged: {lost} without a ticket, "
            f"{checks['doubled']} done twice (tickets, 'completed' audits, print jobs), "
            f"{checks['two_processed_deliveries']} with two deliveries 'processed'; "
            f"deliveries {statuses}; {deadlocks} deadlocks, "
            f"{checks['fulfilment_retried']} fulfilments retried"),
        Row(bench, "drain after the last send", "s", drain_s,
            note=(f"{backlog_at_end} sessions still to confirm when sending ended, "
                  f"{_fmt_rate(drain_rate)} while draining; {print_backlog} print jobs "
                  "still queued then" if done
                  else f"did not drain in time ({backlog_at_end} to confirm at the end)")
            + f"; database backends by wait {top_waits(drain_waits.means())}"),
    ]  # fmt: skip
