"""Group commit for the webhook intake: the deliveries that arrive together are stored
together, in one INSERT and one COMMIT, and each request is answered once its row is
committed.

A request thread hands its row to the writer of its process and waits; the writer takes
everything waiting (up to WEBHOOK_GROUP_COMMIT_MAX rows), INSERTs it in one statement
(`ON CONFLICT … DO NOTHING` on the unique provider + event id: a repeat, which is then
answered as a duplicate) and commits, then wakes the webhook workers once for the group.
While one group commits, the next gathers, so the group grows with the load and a quiet
system pays nothing: a lone request is written at once. A provider's 2xx always follows
the durable COMMIT of its own row.

A row the database refuses for itself (a value out of range, say) fails only itself: a
group that fails is written again one row at a time. When the connection breaks, the
group's requests answer 503 (the provider retries; a row that did commit is then a
duplicate) and the next group opens a new connection; each group checks its connection
before use, as Django checks a request's.

Used on PostgreSQL when the request is not inside a transaction of its own (as served);
elsewhere, and for rows without a provider event id, `payments.services.intake` stores
the row itself, with one INSERT.
"""

import logging
import os
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
)

from payments.models import WebhookDelivery
from payments.services.wake import deliveries_wake

logger = logging.getLogger(__name__)

# At most this many groups' worth of rows wait; a request beyond answers 503 at once (the
# database is stalled: the provider retries later, nothing piles up in memory).
QUEUE_LIMIT_GROUPS = 10
# A writer that had nothing to write for this long closes its database connection.
IDLE_CLOSE_SECONDS = 30.0


class GroupCommitUnavailable(DatabaseError):
    """The writer could not store the row in time (the request answers 503)."""


@dataclass
class _Row:
    delivery: WebhookDelivery
    done: threading.Event = field(default_factory=threading.Event)
    pk: int | None = None  # None after `done`: a duplicate
    error: Exception | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.delivery.provider, self.delivery.event_id)


def _as_database_error(exc: Exception) -> DatabaseError:
    """What a row's failure is answered as: a DatabaseError (an IntegrityError or DataError
    as raised; a value the driver cannot even send, such as a lone surrogate, as a
    DataError)."""
    return exc if isinstance(exc, DatabaseError) else DataError(f"{exc.__class__.__name__}: {exc}")


def _insert_sql(deliveries: list[WebhookDelivery]) -> tuple[str, list]:
    meta = WebhookDelivery._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list = []
    for delivery in deliveries:
        for f in fields:
            params.append(f.get_db_prep_save(f.pre_save(delivery, add=True), connection))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 (names, not values)
        f"VALUES {', '.join([row] * len(deliveries))} "
        # Only a repeat of a provider's event id (the partial unique index
        # delivery_one_per_event) is skipped; any other violation raises.
        f"ON CONFLICT ({quote(meta.get_field('provider').column)}, "
        f"{quote(meta.get_field('event_id').column)}) "
        f"WHERE NOT {quote(meta.get_field('event_id').column)} = '' "
        f"AND {quote(meta.get_field('replay_of').column)} IS NULL "
        f"DO NOTHING RETURNING {quote(meta.pk.column)}, "
        f"{quote(meta.get_field('provider').column)}, {quote(meta.get_field('event_id').column)}"
    )
    return sql, params


def _write(rows: list[_Row]) -> None:
    """INSERT `rows` in one statement (autocommit: committed when it returns) and give each
    its id, or None when the database already held its provider + event id."""
    firsts: dict[tuple, _Row] = {}
    repeats: list[_Row] = []
    for row in rows:
        if row.key in firsts:
            repeats.append(row)
        else:
            firsts[row.key] = row
    sql, params = _insert_sql([row.delivery for row in firsts.values()])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        stored = {(provider, event_id): pk for pk, provider, event_id in cursor.fetchall()}
    for key, row in firsts.items():
        row.pk = stored.get(key)
    for row in repeats:
        row.pk = None  # the same event twice in one group: the second is a duplicate


class IntakeWriter:
    """This process's writer thread (started on first use)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Row] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def store(self, delivery: WebhookDelivery, *, timeout: float | None = None) -> int | None:
        """Store `delivery` with the group being gathered: its id, or None for a duplicate.
        Raises the DatabaseError that refused it (an IntegrityError for a row the database
        refused for itself), or GroupCommitUnavailable after `timeout` seconds (default
        WEBHOOK_GROUP_COMMIT_WAIT_SECONDS) or when too many rows already wait."""
        row = _Row(delivery)
        with self._cond:
            if len(self._queue) >= QUEUE_LIMIT_GROUPS * max(1, settings.WEBHOOK_GROUP_COMMIT_MAX):
                raise GroupCommitUnavailable("too many deliveries are waiting to be stored")
            self._ensure_thread()
            self._queue.append(row)
            self._cond.notify()
        wait = settings.WEBHOOK_GROUP_COMMIT_WAIT_SECONDS if timeout is None else timeout
        if not row.done.wait(wait):
            with self._cond:
                if row in self._queue:  # not taken yet: it never will be
                    self._queue.remove(row)
                    raise GroupCommitUnavailable(f"the delivery was not stored within {wait:g} s")
            # Being written: it may still commit, and the retry is then a duplicate.
            raise GroupCommitUnavailable(f"the delivery was not stored within {wait:g} s")
        if row.error is not None:
            # An exception of its own per request (a shared one would gather every waiting
            # thread's traceback), of the same kind, so the intake tells them apart.
            kind = IntegrityError if isinstance(row.error, IntegrityError) else DatabaseError
            raise kind(str(row.error)) from row.error
        delivery.pk = row.pk
        return row.pk

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="intake-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the writer thread once what is queued is written; it closes its database
        connection (tests call this before the test database goes away)."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._cond.notify()
        thread.join(timeout)
        with self._cond:
            if self._thread is thread and not thread.is_alive():
                self._thread, self._stopping = None, False

    def _take(self) -> list[_Row] | None:
        """The next group; None when the writer is to stop."""
        idle = False
        while True:
            if idle:
                connection.close()  # idle: no connection held open for nothing
            with self._cond:
                if not self._queue:
                    if self._stopping:
                        return None
                    idle = not self._cond.wait(IDLE_CLOSE_SECONDS) and not self._queue
                    continue
                limit = max(1, settings.WEBHOOK_GROUP_COMMIT_MAX)
                group, self._queue = self._queue[:limit], self._queue[limit:]
                return group

    def _run(self) -> None:
        try:
            while (group := self._take()) is not None:
                self._commit_safely(group)
        finally:
            connection.close()

    def _commit_safely(self, group: list[_Row]) -> None:
        try:
            self._commit(group)
        except BaseException as exc:  # never leave a request waiting
            logger.exception("intake writer: a group of %s rows failed", len(group))
            for row in group:
                if not row.done.is_set():
                    if row.error is None and row.pk is None:
                        row.error = exc if isinstance(exc, DatabaseError) else DatabaseError(exc)
                    row.done.set()

    def _commit(self, group: list[_Row]) -> None:
        self._connection_checked()
        try:
            _write(group)
        except (OperationalError, InterfaceError) as exc:
            # The connection broke (the COMMIT may even have happened): these requests
            # answer 503, their retries find the rows stored (a duplicate) or not; the
            # next group opens a new connection.
            connection.close()
            for row in group:
                row.error = exc
        except Exception as exc:  # a row's fault, in the database or in encoding it
            if len(group) == 1:
                group[0].error = _as_database_error(exc)
            else:
                # One row the database refuses must not fail the others: each alone.
                logger.warning("intake: a group of %s failed (%s); one by one", len(group), exc)
                for row in group:
                    try:
                        _write([row])
                    except Exception as one:
                        row.error = _as_database_error(one)
        for row in group:
            row.done.set()
        if any(row.error is None for row in group):
            deliveries_wake()

    @staticmethod
    def _connection_checked() -> None:
        """Make sure the connection still works before a group uses it (the server may
        have restarted, or a network cut it, since the last group), as Django checks a
        request's connection (CONN_HEALTH_CHECKS): one round trip per group, not per
        request."""
        if connection.connection is not None and not connection.is_usable():
            connection.close()


intake_writer = IntakeWriter()
# A forked child (a gunicorn worker) starts with a writer of its own: the parent's thread
# is not there, and its lock may have been held at the fork.
os.register_at_fork(after_in_child=intake_writer.__init__)
