"""Publishing to the event log and pushing to connected screens.

`event_publish` writes events inside the caller's transaction; they are pushed through
the channel layer only after that transaction commits, so an event from a rolled-back
transaction is never seen. The push is best effort (the channel layer may drop or be
down); the log and the clients' resume make delivery at-least-once per connection.

`alert_raise` is the one way to tell staff that something needs a person. Alerts are
recorded (one open row per problem, counting repeats) so that a problem that repeats a
thousand times reaches staff once per de-duplication window, not a thousand times.
"""

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.mail import mail_admins
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from notifications.alert_targets import alert_targets
from notifications.audiences import audience_group, audience_validate
from notifications.errors import NotificationError
from notifications.models import Alert, Event

logger = logging.getLogger(__name__)

PUSH_MESSAGE_TYPE = "event.push"
# The longest a push may hold up the request or task that published the events.
PUSH_TIMEOUT_SECONDS = 3.0


_deferred = threading.local()


@contextmanager
def events_batched():
    """Inside this block (in a transaction), events are written together when it ends:
    one INSERT for all of them, in the order they were published (a batch of webhook
    deliveries publishes hundreds). Events published in a block that raises are dropped
    with it."""
    if getattr(_deferred, "events", None) is not None:
        yield  # already batching: the outer block writes them
        return
    _deferred.events = []
    frames: list = []
    in_transaction = transaction.get_connection().in_atomic_block
    if in_transaction:
        # Registered first, so the screens are told before any other after-commit work
        # of the batch (a print task enqueued per ticket commits on its own).
        transaction.on_commit(lambda: frames and events_push(frames))
    try:
        yield
        events = _deferred.events
    finally:
        _deferred.events = None
    if events:
        frames.extend(_write(events, push=not in_transaction))


def events_mark() -> int:
    """Where the batch stands now (0 outside `events_batched()`)."""
    batch = getattr(_deferred, "events", None)
    return len(batch) if batch is not None else 0


def events_discard_after(mark: int) -> None:
    """Drop what was published since `mark`: the savepoint it was published in rolled
    back (outside `events_batched()` the rollback took the events with it already)."""
    batch = getattr(_deferred, "events", None)
    if batch is not None:
        del batch[mark:]


def _write(events: list, *, push: bool = True) -> list:
    """Insert `events` and (with `push`) push them once the transaction commits; their
    frames."""
    # One INSERT for every event (PostgreSQL and SQLite return the ids); bulk_create wraps
    # itself in a transaction when the caller holds none.
    Event.objects.bulk_create(events)
    frames = [(event.audience, event.as_frame()) for event in events]
    if push:
        transaction.on_commit(lambda: events_push(frames))
    for event in events:
        logger.debug("event %s %s -> %s", event.id, event.type, event.audience)
    return frames


def event_publish(*, audience: str | Iterable[str], type: str, payload: dict | None = None):
    """Append one event per audience; push them once the surrounding transaction commits.

    Raises InvalidAudience for a malformed audience and NotificationError for a payload
    that is not a JSON object; nothing is written then. Inside `events_batched()` the
    events get their ids when the block ends.
    """
    audiences = [audience] if isinstance(audience, str) else list(dict.fromkeys(audience))
    for name in audiences:
        audience_validate(name)
    if not type or len(type) > 100:
        raise NotificationError("An event needs a type of at most 100 characters.")
    if payload is not None and not isinstance(payload, dict):
        raise NotificationError("An event payload must be a JSON object.")
    data = json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder))
    now = timezone.now()
    events = [Event(audience=name, type=type, payload=data, created_at=now) for name in audiences]
    batch = getattr(_deferred, "events", None)
    if batch is not None:
        batch.extend(events)
    else:
        _write(events)
    return events


class _PushLoop:
    """One event loop per process, in a daemon thread, for pushes from sync code.

    `async_to_sync` would start an event loop per call, and a channel layer on Redis opens
    its connections per loop: every push would connect anew. This loop keeps them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if self._loop is None or not alive or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="event-push", daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()
            return self._loop

    def run(self, coroutine, timeout: float) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from the channel layer within {timeout} s") from None


_push_loop = _PushLoop()


def push_message(frame: dict) -> dict:
    """The channel-layer message that carries one frame to a group. The frame goes encoded
    once here, so a hundred screens on one server do not each encode it again."""
    return {"type": PUSH_MESSAGE_TYPE, "frame": frame, "text": json.dumps(frame)}


def events_push(frames: list[tuple[str, dict]]) -> None:
    """Send already-committed frames to their audiences' groups; never raises.

    Caller must not hold database locks (this talks to the channel layer). Waits at most
    PUSH_TIMEOUT_SECONDS: a stalled Redis delays the caller that long, no longer.
    """
    if not frames:
        return
    layer = get_channel_layer()

    async def send_all() -> None:
        for audience, frame in frames:
            await layer.group_send(audience_group(audience), push_message(frame))

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # The in-process layer's queues belong to the server's loop: send from there.
            async_to_sync(send_all)()
        else:
            _push_loop.run(send_all(), PUSH_TIMEOUT_SECONDS)
    except Exception as exc:
        # Clients catch up from the log on their next resume.
        logger.warning(
            "event push failed (%s) for events %s",
            exc.__class__.__name__,
            ",".join(str(f["id"]) for _, f in frames),
        )


def events_prune(*, older_than: timedelta, batch_size: int = 5000, dry_run: bool = False) -> int:
    """Delete events older than `older_than`, in batches; returns how many went (with
    `dry_run`, how many would go, and nothing is deleted)."""
    cutoff = timezone.now() - older_than
    if dry_run:
        return Event.objects.filter(created_at__lt=cutoff).count()
    deleted = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += Event.objects.filter(id__in=ids).delete()[0]


# --- Alerts ------------------------------------------------------------------------------

_MAX_KEY_LENGTH = 200


def _as_json(context: dict | None) -> dict:
    if context is not None and not isinstance(context, dict):
        raise NotificationError("An alert context must be a JSON object.")
    return json.loads(json.dumps(context or {}, cls=DjangoJSONEncoder))


def alert_dedupe_key(context: dict, dedupe_key: str | None = None) -> str:
    """The key that makes two raises of one code "the same problem": the caller's key when
    given, otherwise a fingerprint of the context that ignores key order."""
    if dedupe_key:
        if len(dedupe_key) <= _MAX_KEY_LENGTH:
            return dedupe_key
        return "sha256:" + hashlib.sha256(dedupe_key.encode()).hexdigest()
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"))
    return "ctx:" + hashlib.sha256(canonical.encode()).hexdigest()


def _open_alert_locked(*, code: str, key: str, message: str, context: dict, now):
    """The open alert for (code, key), locked, and whether this call created it.

    Caller holds a transaction. Two transactions raising the same new alert both try to
    insert; the unique constraint on open alerts makes the second wait for the first and
    then take its row instead.
    """
    open_alerts = Alert.objects.select_for_update().filter(
        code=code, dedupe_key=key, resolved_at__isnull=True
    )
    for _attempt in range(3):
        alert = open_alerts.order_by("pk").first()
        if alert is not None:
            return alert, False
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    code=code,
                    dedupe_key=key,
                    message=message,
                    context=context,
                    first_raised_at=now,
                    last_raised_at=now,
                    last_notified_at=now,
                )
            return alert, True
        except IntegrityError:
            continue  # another transaction opened it first: count on its row
    raise NotificationError(f"Could not record alert {code}: its row keeps changing.")


def alert_raise(
    *, code: str, message: str, context: dict | None = None, dedupe_key: str | None = None
) -> Alert:
    """Tell staff something needs a person, once per problem.

    The same code with the same context (or the same `dedupe_key`) is one problem: while
    its alert is open, a raise within settings.ALERT_DEDUPE_SECONDS of the last time staff
    were told only counts (count, last_raised_at). Otherwise staff are told: an ERROR log
    line now; and, when the surrounding transaction commits, an `alert.raised` event to
    `role:staff`, mail to settings.ADMINS (if any) and, by one retrying task per URL, a
    message to each alert URL (settings.ALERT_URLS, notifications/alert_targets.py).
    Safe inside or outside a transaction and under concurrency; a raise in a transaction
    that rolls back leaves no alert and tells nobody but the log.
    """
    if not code or len(code) > 100:
        raise NotificationError("An alert needs a code of at most 100 characters.")
    message = str(message)
    context = _as_json(context)
    key = alert_dedupe_key(context, dedupe_key)
    now = timezone.now()
    window = timedelta(seconds=settings.ALERT_DEDUPE_SECONDS)
    try:
        with transaction.atomic():
            alert, created = _open_alert_locked(
                code=code, key=key, message=message, context=context, now=now
            )
            notify = created or alert.last_notified_at <= now - window
            if not created:
                alert.count += 1
                alert.last_raised_at = now
                fields = ["count", "last_raised_at"]
                if notify:
                    alert.message, alert.context, alert.last_notified_at = message, context, now
                    fields += ["message", "context", "last_notified_at"]
                alert.save(update_fields=fields)
            if notify:
                _alert_announce(alert, now)
    except DatabaseError:
        # Staff must hear about it even when the database cannot keep the alert.
        logger.error("alert %s (not recorded): %s %s", code, message, json.dumps(context))
        raise
    if notify:
        logger.error(
            "alert %s: %s %s", code, message, json.dumps(context), extra={"alert": alert.pk}
        )
    else:
        logger.info("alert %s repeated (%d times so far)", code, alert.count)
    return alert


def _alert_announce(alert: Alert, now) -> None:
    """Publish the staff event and arrange mail and alert URLs for after commit.

    Caller holds the transaction that recorded `alert`.
    """
    event_publish(
        audience="role:staff",
        type="alert.raised",
        payload={
            "code": alert.code,
            "message": alert.message,
            "context": alert.context,
            "alert": alert.pk,
            "count": alert.count,
        },
    )
    raised_at = now.isoformat()
    if settings.ADMINS:
        code, (subject, body) = alert.code, alert_summary(alert, raised_at=raised_at)
        transaction.on_commit(lambda: _alert_mail_send(code, subject, body))
    keys = [target.key for target in alert_targets()]
    if keys:
        alert_id = alert.pk
        transaction.on_commit(lambda: _alert_enqueue_each(alert_id, raised_at, keys))


def _alert_enqueue_each(alert_id: int, raised_at: str, keys: list[str]) -> None:
    for key in keys:
        alert_webhook_enqueue(alert_id=alert_id, raised_at=raised_at, target=key)


def alert_summary(alert: Alert, *, raised_at: str) -> tuple[str, str]:
    """The title (one line, at most 150 characters) and the text that tell staff of
    `alert`, by mail or through an alert URL."""
    # Header values may not contain newlines; a long message belongs in the body.
    title = " ".join(f"{alert.code}: {alert.message}".split())[:150]
    lines = [
        alert.message,
        "",
        f"code: {alert.code}",
        f"raised at: {raised_at}",
        f"times raised: {alert.count}",
    ]
    if alert.pk is not None:  # a test message has no alert to open
        lines.append(f"alert id: {alert.pk}")
    if alert.pk is not None and settings.PUBLIC_BASE_URL:
        path = reverse("admin:notifications_alert_change", args=[alert.pk])
        lines.append(f"resolve it at: {settings.PUBLIC_BASE_URL.rstrip('/')}{path}")
    lines += ["", json.dumps(alert.context, indent=2, sort_keys=True)]
    return title, "\n".join(lines)


def _alert_mail_send(code: str, subject: str, body: str) -> None:
    """Mail the admins; a mail failure is logged, never raised (the alert is recorded)."""
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception as exc:
        logger.warning("alert %s: mail to admins failed (%s)", code, exc.__class__.__name__)


def alert_webhook_enqueue(
    *, alert_id: int, raised_at: str, target: str, attempt: int = 1, run_after=None
):
    """Queue one delivery attempt of an alert to the alert URL whose key is `target`
    (notifications.alert_targets); never raises."""
    from notifications.tasks import alert_webhook_send

    task = alert_webhook_send.using(run_after=run_after) if run_after else alert_webhook_send
    try:
        task.enqueue(alert_id=alert_id, raised_at=raised_at, attempt=attempt, target=target)
    except Exception as exc:
        logger.warning(
            "alert %s: could not queue delivery attempt %d (%s)",
            alert_id,
            attempt,
            exc.__class__.__name__,
        )


def alert_resolve(*, alert_id: int, user=None, notes: str = "") -> bool:
    """Close an open alert, naming who closed it and why; False when it was already closed.

    The next raise of the same problem opens a new alert.
    """
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None or alert.resolved_at is not None:
            return False
        alert.resolved_at = timezone.now()
        alert.resolved_by = user if getattr(user, "pk", None) else None
        if notes.strip():
            alert.notes = f"{alert.notes}\n{notes.strip()}".strip()
        alert.save(update_fields=["resolved_at", "resolved_by", "notes"])
    logger.info("alert %s (%s) resolved by %s", alert.pk, alert.code, user or "system")
    return True


def alerts_prune(*, older_than: timedelta, batch_size: int = 5000, dry_run: bool = False) -> int:
    """Delete alerts resolved more than `older_than` ago, in batches (open alerts stay
    whatever their age); returns how many went, or with `dry_run` how many would go."""
    old = Alert.objects.filter(resolved_at__lt=timezone.now() - older_than)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += Alert.objects.filter(pk__in=ids).delete()[0]
