"""Delivering alerts to an outside webhook (a chat, a pager, an incident tool).

The URL, settings.ALERT_WEBHOOK_URL, often carries a secret token in its path or query:
it is read from the settings when a delivery runs, never stored with the task and never
logged; log lines name only its host. Attempts run as tasks and back off on failure.
"""

import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from notifications.models import Alert
from notifications.services import alert_webhook_enqueue

logger = logging.getLogger(__name__)

# Delivery attempts to ALERT_WEBHOOK_URL wait this long before the second attempt, doubling
# after each failure, never more than ALERT_WEBHOOK_MAX_DELAY.
ALERT_WEBHOOK_FIRST_DELAY = timedelta(seconds=30)
ALERT_WEBHOOK_MAX_DELAY = timedelta(hours=1)
ALERT_WEBHOOK_TIMEOUT_SECONDS = 10


def webhook_host(url: str) -> str:
    """The part of a webhook URL that may be logged: host and port, never the user info,
    path or query, where secret tokens live."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "(unparseable URL)"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without its body: treat it as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _post_json(url: str, body: bytes) -> int:
    """POST `body` and return the HTTP status; raises OSError for network trouble."""
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked by the caller)
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


def alert_webhook_post(*, alert_id: int, raised_at: str, attempt: int = 1) -> str:
    """POST one alert to settings.ALERT_WEBHOOK_URL as JSON {code, message, context,
    raised_at, count}; on failure schedule the next attempt with back-off, up to
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS. Returns "sent", "retrying", "gave_up" or "skipped".

    Never raises and never logs the URL (it may carry a secret token), only its host.
    """
    url = settings.ALERT_WEBHOOK_URL
    alert = Alert.objects.filter(pk=alert_id).first()
    if not url or alert is None:
        return "skipped"
    host = webhook_host(url)
    if urlsplit(url).scheme not in ("http", "https"):
        logger.error("alert webhook to %s: only http and https URLs are supported", host)
        return "gave_up"
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
        status = _post_json(url, body)
        problem = "" if 200 <= status < 300 else f"HTTP {status}"
    except Exception as exc:
        # The message of a network error may quote the URL: keep only its class.
        problem = exc.__class__.__name__
    if not problem:
        logger.info("alert %s sent to webhook %s (attempt %d)", alert.code, host, attempt)
        return "sent"
    if attempt >= settings.ALERT_WEBHOOK_MAX_ATTEMPTS:
        logger.error(
            "alert %s: webhook %s failed (%s); gave up after %d attempts",
            alert.code,
            host,
            problem,
            attempt,
        )
        return "gave_up"
    delay = min(ALERT_WEBHOOK_FIRST_DELAY * 2 ** (attempt - 1), ALERT_WEBHOOK_MAX_DELAY)
    logger.warning(
        "alert %s: webhook %s failed (%s) on attempt %d; next in %ds",
        alert.code,
        host,
        problem,
        attempt,
        delay.total_seconds(),
    )
    alert_webhook_enqueue(
        alert_id=alert_id,
        raised_at=raised_at,
        attempt=attempt + 1,
        run_after=timezone.now() + delay,
    )
    return "retrying"
