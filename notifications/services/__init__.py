"""Every write of the notifications app. Import from here; modules are split by concern:
`events` (the event log and the push to screens), `alerts` (raising, de-duplicating and
resolving alerts), `mail` (telling staff by mail)."""

from notifications.services.alerts import (
    alert_dedupe_key,
    alert_raise,
    alert_resolve,
    alert_webhook_enqueue,
    alerts_prune,
)
from notifications.services.events import (
    PUSH_MESSAGE_TYPE,
    event_publish,
    events_batched,
    events_discard_after,
    events_mark,
    events_prune,
    events_push,
    push_message,
)
from notifications.services.mail import alert_summary

__all__ = [
    "PUSH_MESSAGE_TYPE",
    "alert_dedupe_key",
    "alert_raise",
    "alert_resolve",
    "alert_summary",
    "alert_webhook_enqueue",
    "alerts_prune",
    "event_publish",
    "events_batched",
    "events_discard_after",
    "events_mark",
    "events_prune",
    "events_push",
    "push_message",
]
