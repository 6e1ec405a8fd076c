"""Telling staff that something needs a person, once per problem.

`alert_raise` is the one way to do it. Alerts are recorded (one open row per problem,
counting repeats) so that a problem that repeats a thousand times reaches staff once per
de-duplication window, not a thousand times: by an event, by mail (services/mail.py) and
through each alert URL (notifications/alert_delivery.py, one retrying task per URL).
"""

import hashlib
import json
import logging
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from core.taskqueue import TaskRef
from notifications.alert_targets import alert_targets
from notifications.audiences import audience_role
from notifications.errors import NotificationError
from notifications.models import Alert
from notifications.services.events import event_publish
from notifications.services.mail import alert_mail_send, alert_summary

logger = logging.getLogger(__name__)

# notifications/tasks.py runs alert_delivery, which queues this task again on failure.
ALERT_WEBHOOK_SEND = TaskRef("notifications.tasks.alert_webhook_send")


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
        audience=audience_role("staff"),
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
        transaction.on_commit(lambda: alert_mail_send(code, subject, body))
    keys = [target.key for target in alert_targets()]
    if keys:
        alert_id = alert.pk
        transaction.on_commit(lambda: _alert_enqueue_each(alert_id, raised_at, keys))


def _alert_enqueue_each(alert_id: int, raised_at: str, keys: list[str]) -> None:
    for key in keys:
        alert_webhook_enqueue(alert_id=alert_id, raised_at=raised_at, target=key)


def alert_webhook_enqueue(
    *, alert_id: int, raised_at: str, target: str, attempt: int = 1, run_after=None
):
    """Queue one delivery attempt of an alert to the alert URL whose key is `target`
    (notifications.alert_targets); never raises."""
    send = ALERT_WEBHOOK_SEND.task
    task = send.using(run_after=run_after) if run_after else send
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
