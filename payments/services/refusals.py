"""Counting refused webhook requests: a compact record, never the body, never a flood.

One `WebhookRefusal` row per provider, reason, address and hour holds the count, the hour's
first request's size, SHA-256 and at most SAMPLE_BYTES of its body and headers. The first
refusal of a row in a process is written at once (one upsert) and logged; the repeats a
process sees are added up in memory and written together every
WEBHOOK_REFUSAL_FLUSH_SECONDS (one upsert per row), so a flood of forged requests costs a
hash and a dictionary update each, not a database write: refusing is cheaper than storing.
If a process dies, the repeats of its last interval are not counted (the first of each row
always is). WEBHOOK_REFUSAL_FLUSH_SECONDS=0 writes every refusal at once (the tests do).
"""

import atexit
import hashlib
import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from config.logging import redact
from payments.models import WebhookRefusal

logger = logging.getLogger(__name__)

REDACTED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
SAMPLE_BYTES = 1024  # of the body, and of the headers, kept for the first refusal an hour
# Rows this process has written this hour; past this many (a new address per request)
# it forgets them, and the next repeat of each is written at once again: still counted.
SEEN_MAX = 10_000
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
    delay = settings.WEBHOOK_REFUSAL_FLUSH_SECONDS
    if delay > 0:
        with _repeats.lock:
            if key in _repeats.seen:
                entry = _repeats.pending.get(key)
                if entry is None:
                    _repeats.pending[key] = _values(
                        provider, endpoint, reason, status, address, window, now, body,
                        body_size, headers, detail,
                    )  # fmt: skip
                else:
                    entry[COUNT] += 1
                    entry[LAST_AT] = now
                _schedule()
                return
            if len(_repeats.seen) >= SEEN_MAX or _repeats.window != window:
                _repeats.seen.clear()  # a new hour: new rows
                _repeats.window = window
            _repeats.seen.add(key)
    values = _values(
        provider, endpoint, reason, status, address, window, now, body, body_size, headers, detail
    )
    count = _write(values)
    if count == 1:
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
