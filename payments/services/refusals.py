"""Counting refused webhook requests: a compact record, never the body, never a flood.

One `WebhookRefusal` row per provider, reason, address and hour holds the count, the hour's
first request's size, SHA-256 and at most SAMPLE_BYTES of its body and headers. A process
adds its refusals up in memory and writes them every WEBHOOK_REFUSAL_FLUSH_SECONDS, one
upsert per row: a flood of forged requests costs a hash and a dictionary update each, not
a database write, so refusing is cheaper than storing. The first refusal of a row this
hour is logged at once (at most LOG_PER_MINUTE lines a minute; the rest are summed up in
one line). If a process dies, what it counted in its last interval is lost.
WEBHOOK_REFUSAL_FLUSH_SECONDS=0 writes every refusal at once (the tests' default).
"""

import atexit
import hashlib
import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from core.logging import redact
from payments.models import WebhookRefusal

logger = logging.getLogger(__name__)

REDACTED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
SAMPLE_BYTES = 1024  # of the body, and of the headers, kept for the first refusal an hour
# Rows this process has logged this hour; past this many (a new address per request) it
# forgets them, and may log a row a second time.
SEEN_MAX = 10_000
LOG_PER_MINUTE = 20  # refusal lines a process logs a minute at most
COUNT = 8  # where the count is in a row's values (see `_upsert_sql`)
LAST_AT = 7


def clean_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name.lower(): ("[redacted]" if name.lower() in REDACTED_HEADERS else str(value)[:2000])
        for name, value in headers.items()
    }


def _upsert_sql() -> str:
    table = connection.ops.quote_name(WebhookRefusal._meta.db_table)
    columns = (
        "provider, endpoint, reason, response_status, remote_addr, window_start, first_at, "
        "last_at, count, body_size, body_sha256, body_head, headers_head, detail"
    )
    # Only the model's own table name is formatted in; every value is a parameter.
    return (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (provider, reason, remote_addr, window_start) DO UPDATE SET "
        # The sample (size, hash, first bytes) stays the hour's first request's.
        f"count = {table}.count + excluded.count, "
        f"last_at = greatest({table}.last_at, excluded.last_at) RETURNING count"
    )


class _Repeats:
    """The repeats this process has counted and not yet written (shared by its threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[tuple] = set()
        self.window = None
        self.pending: dict[tuple, list] = {}
        self.timer: threading.Timer | None = None
        self.log_minute = None
        self.logged = 0
        self.unlogged = 0


_repeats = _Repeats()


def refusal_record(
    *,
    provider: str,
    endpoint: str,
    reason: str,
    status: int,
    remote_addr: str | None,
    body: bytes,
    body_size: int,
    headers: dict[str, str],
    detail: str = "",
) -> None:
    """Count one refused request; log it when it is the first of its row this hour."""
    now = timezone.now()
    window = now.replace(minute=0, second=0, microsecond=0)
    address = (remote_addr or "")[:45]
    key = (provider[:20], reason[:40], address, window)
    if settings.WEBHOOK_REFUSAL_FLUSH_SECONDS <= 0:
        values = _values(
            provider, endpoint, reason, status, address, window, now, body, body_size,
            headers, detail,
        )  # fmt: skip
        if _write(values) == 1:
            _log(provider, reason, remote_addr, detail)
        return
    with _repeats.lock:
        entry = _repeats.pending.get(key)
        if entry is not None:  # a repeat within the interval: one more
            entry[COUNT] += 1
            entry[LAST_AT] = now
            return
    values = _values(
        provider, endpoint, reason, status, address, window, now, body, body_size, headers, detail
    )
    with _repeats.lock:
        entry = _repeats.pending.get(key)
        if entry is not None:
            entry[COUNT] += 1
            entry[LAST_AT] = now
        else:
            _repeats.pending[key] = values
        _schedule()
        if len(_repeats.seen) >= SEEN_MAX or _repeats.window != window:
            _repeats.seen.clear()  # a new hour: new rows
            _repeats.window = window
        first = key not in _repeats.seen
        _repeats.seen.add(key)
        tell = first and _log_allowed(now)
    if tell:
        _log(provider, reason, remote_addr, detail)


def _log_allowed(now) -> bool:
    """At most LOG_PER_MINUTE refusal lines a minute (caller holds the lock): a flood from
    new addresses is summed up in one line instead (`refusals_flush`)."""
    minute = now.replace(second=0, microsecond=0)
    if _repeats.log_minute != minute:
        _repeats.log_minute, _repeats.logged = minute, 0
    if _repeats.logged >= LOG_PER_MINUTE:
        _repeats.unlogged += 1
        return False
    _repeats.logged += 1
    return True


def _log(provider, reason, remote_addr, detail) -> None:
    logger.warning(
        "webhook refused: %s %s from %s (%s); repeats this hour are only counted",
        provider,
        reason,
        remote_addr or "-",
        redact(detail)[:200],
    )


def _values(provider, endpoint, reason, status, address, window, now, body, size, headers, detail):
    header_text = "\n".join(f"{k}: {v}" for k, v in clean_headers(headers).items())
    return [
        provider[:20],
        endpoint[:40],
        reason[:40],
        status,
        address,
        window,
        now,
        now,
        1,
        size,
        hashlib.sha256(body).hexdigest(),
        body[:SAMPLE_BYTES],
        redact(header_text)[:SAMPLE_BYTES],
        redact(detail)[:300],
    ]


def _write(values: list) -> int | None:
    """Add one row's count (one upsert); the row's count after it, None if it failed."""
    params = [
        connection.ops.adapt_datetimefield_value(v) if i in (5, 6, 7) else v
        for i, v in enumerate(values)
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(), params)
            return cursor.fetchone()[0]
    except DatabaseError:
        logger.exception("could not count %s refused %s webhook(s)", values[COUNT], values[0])
        return None


def _schedule() -> None:
    """Make sure a flush is coming (caller holds the lock)."""
    delay = settings.WEBHOOK_REFUSAL_FLUSH_SECONDS
    if _repeats.timer is None and delay > 0:
        _repeats.timer = threading.Timer(delay, _flush_in_thread)
        _repeats.timer.daemon = True
        _repeats.timer.start()


def refusals_flush() -> None:
    """Write the repeats counted so far (the timer does this every
    WEBHOOK_REFUSAL_FLUSH_SECONDS; the process does it once more when it exits)."""
    with _repeats.lock:
        pending, _repeats.pending = _repeats.pending, {}
        if _repeats.timer is not None:
            _repeats.timer.cancel()
            _repeats.timer = None
        unlogged, _repeats.unlogged = _repeats.unlogged, 0
    if unlogged:
        logger.warning(
            "webhook refused: %s more from new addresses or for new reasons, only counted "
            "(Payments > Refused webhooks)",
            unlogged,
        )
    failed = {key: values for key, values in pending.items() if _write(values) is None}
    if failed:  # the database is away: keep them for the next interval
        with _repeats.lock:
            for key, values in failed.items():
                entry = _repeats.pending.get(key)
                if entry is None:
                    _repeats.pending[key] = values
                else:
                    entry[COUNT] += values[COUNT]
            _schedule()


def _flush_in_thread() -> None:
    try:
        refusals_flush()
    finally:
        connection.close()  # this timer thread's own connection


atexit.register(refusals_flush)
