"""Telling staff of an alert by mail, and the words every channel uses for it."""

import json
import logging

from django.conf import settings
from django.core.mail import mail_admins
from django.urls import reverse

from notifications.models import Alert

logger = logging.getLogger(__name__)


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


def alert_mail_send(code: str, subject: str, body: str) -> None:
    """Mail the admins; a mail failure is logged, never raised (the alert is recorded)."""
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception as exc:
        logger.warning("alert %s: mail to admins failed (%s)", code, exc.__class__.__name__)
