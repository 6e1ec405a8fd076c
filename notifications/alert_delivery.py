"""Delivering alerts to the alert URLs (a chat, a mailbox, an incident tool).

Each alert goes to each URL of notifications.alert_targets by a task of its own, after the
alert's transaction commits: a URL that fails is retried alone, with back-off, and the
others are not sent to twice. Apprise speaks each service's format (Slack, Discord,
Telegram, Teams workflows, e-mail, generic JSON…); `confirma://` and `confirmas://` URLs
get Confirma's own alert JSON, what the deprecated ALERT_WEBHOOK_URL received.

A task names its URL by a hash and reads the URL from the settings when it runs: the URL
is never stored with the task and never logged. Log lines name the service and, where it
is a host name, the host; Apprise's own messages (which quote tokens) are kept out of the
logs and only the HTTP status or the kind of failure is taken from them.
"""

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

import apprise
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from notifications.alert_targets import (
    CONFIRMA_SCHEMES,
    alert_target_find,
    alert_target_label,
    alert_targets,
)
from notifications.models import Alert
from notifications.services.alerts import alert_webhook_enqueue
from notifications.services.mail import alert_summary

logger = logging.getLogger(__name__)

# The second attempt to one URL waits this long, doubling after each failure, never more
# than ALERT_WEBHOOK_MAX_DELAY.
ALERT_WEBHOOK_FIRST_DELAY = timedelta(seconds=30)
ALERT_WEBHOOK_MAX_DELAY = timedelta(hours=1)
ALERT_WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class _Attempt:
    label: str
    problem: str = ""  # empty: delivered
    final: bool = False  # a problem no later attempt can fix (a URL no service takes)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without its body: treat it as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _post_json(url: str, body: bytes) -> int:
    """POST `body` and return the HTTP status; raises OSError for network trouble."""
    request = urllib.request.Request(  # noqa: S310 (the scheme is http or https, set below)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Confirma-alerts/1"},
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=ALERT_WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _send_confirma_json(url: str, alert: Alert, raised_at: str) -> _Attempt:
    """POST {code, message, context, raised_at, count} to the http(s) address of a
    confirma(s):// URL."""
    scheme, _, rest = url.partition("://")
    label = alert_target_label(url)
    body = json.dumps(
        {
            "code": alert.code,
            "message": alert.message,
            "context": alert.context,
            "raised_at": raised_at,
            "count": alert.count,
        },
        cls=DjangoJSONEncoder,
    ).encode()
    try:
        status = _post_json(f"{CONFIRMA_SCHEMES[scheme.lower()]}://{rest}", body)
    except Exception as exc:
        # The message of a network error may quote the URL: keep only its class.
        return _Attempt(label, exc.__class__.__name__)
    return _Attempt(label, "" if 200 <= status < 300 else f"HTTP {status}")


_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")


def _apprise_problem(messages: str) -> str:
    """What may be logged of Apprise's account of a failure: the HTTP status, or the kind
    of failure, never its words (they may quote a token)."""
    status = _HTTP_STATUS.search(messages)
    if status and status.group(1).startswith("2"):
        return f"unexpected answer, HTTP {status.group(1)}"
    if status:
        return f"HTTP {status.group(1)}"
    if "connection error" in messages.lower():
        return "connection error"
    return "not delivered"


def _send_apprise(url: str, alert: Alert, raised_at: str) -> _Attempt:
    """Send the alert's title and text through the Apprise service `url` names."""
    asset = apprise.AppriseAsset(storage_mode="memory", secure_logging=True)
    with apprise.LogCapture(level=logging.WARNING) as captured:
        service = apprise.Apprise.instantiate(url, asset=asset)
        if service is None:
            return _Attempt(
                alert_target_label(url), "no notification service takes this URL", final=True
            )
        label = alert_target_label(url, service.service_name)
        title, body = alert_summary(alert, raised_at=raised_at)
        try:
            sent = service.notify(
                title=title,
                body=body,
                body_format=apprise.NotifyFormat.TEXT,
                notify_type=apprise.NotifyType.WARNING,
            )
        except Exception as exc:
            return _Attempt(label, exc.__class__.__name__)
    return _Attempt(label, "" if sent else _apprise_problem(captured.getvalue()))


def _send(url: str, alert: Alert, raised_at: str) -> _Attempt:
    scheme = url.partition("://")[0].lower()
    send = _send_confirma_json if scheme in CONFIRMA_SCHEMES else _send_apprise
    return send(url, alert, raised_at)


def alert_targets_try() -> list[tuple[str, str]]:
    """Send a test message to every alert URL now, from this process: no task, no retry,
    no alert recorded. Returns (label, problem) per URL, the problem empty when the URL
    took the message."""
    alert = Alert(
        code="alerts.test",
        message="A test message from Confirma: alerts reach this place.",
        context={"test": True},
    )
    raised_at = timezone.now().isoformat()
    results = []
    for target in alert_targets():
        result = _send(target.url, alert, raised_at)
        results.append((result.label, result.problem))
    return results


def alert_deliver(*, alert_id: int, raised_at: str, attempt: int = 1, target: str = "") -> str:
    """Send one alert to the alert URL whose key is `target`; on failure queue the next
    attempt with back-off, up to settings.ALERT_WEBHOOK_MAX_ATTEMPTS. Returns "sent",
    "retrying", "gave_up" or "skipped" (the alert or the URL is gone).

    Without `target` (a task queued before alerts went to several URLs) every URL now
    configured gets this attempt, each retried on its own; the outcomes are joined by
    commas. Never raises and never logs a URL.
    """
    if not target:
        outcomes = [
            alert_deliver(alert_id=alert_id, raised_at=raised_at, attempt=attempt, target=t.key)
            for t in alert_targets()
        ]
        return ",".join(outcomes) or "skipped"
    found = alert_target_find(target)
    alert = Alert.objects.filter(pk=alert_id).first()
    if found is None or alert is None:
        return "skipped"
    result = _send(found.url, alert, raised_at)
    if not result.problem:
        logger.info("alert %s sent to %s (attempt %d)", alert.code, result.label, attempt)
        return "sent"
    if result.final or attempt >= settings.ALERT_WEBHOOK_MAX_ATTEMPTS:
        logger.error(
            "alert %s: %s failed (%s); gave up after %d attempts",
            alert.code,
            result.label,
            result.problem,
            attempt,
        )
        return "gave_up"
    delay = min(ALERT_WEBHOOK_FIRST_DELAY * 2 ** (attempt - 1), ALERT_WEBHOOK_MAX_DELAY)
    logger.warning(
        "alert %s: %s failed (%s) on attempt %d; next in %ds",
        alert.code,
        result.label,
        result.problem,
        attempt,
        delay.total_seconds(),
    )
    alert_webhook_enqueue(
        alert_id=alert_id,
        raised_at=raised_at,
        attempt=attempt + 1,
        target=target,
        run_after=timezone.now() + delay,
    )
    return "retrying"
