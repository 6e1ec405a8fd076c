"""Checks of the alert URLs, run by every `manage.py check` (and so by scripts/serve.sh):

- notifications.E001 an alert URL (ALERT_URLS, ALERT_WEBHOOK_URL) that no notification
  service takes: the alerts meant for it would never arrive;
- notifications.W001 ALERT_WEBHOOK_URL is set: it is deprecated, in favour of ALERT_URLS.

Messages name the URL by its place and service, never by its text (it holds tokens).
"""

from django.conf import settings
from django.core.checks import Error, Warning, register

from notifications.alert_targets import alert_target_label, alert_url_problem, alert_urls


@register("notifications")
def check_alert_urls(app_configs=None, **kwargs):
    messages = []
    for place, url in enumerate(alert_urls(), start=1):
        problem = alert_url_problem(url)
        if problem:
            messages.append(
                Error(
                    f"Alert URL {place} ({alert_target_label(url)}) cannot be sent to: {problem}.",
                    hint="Write it as the service's Apprise URL (slack://…, discord://…, "
                    "tgram://…, workflows://…, mailtos://…, jsons://…) or confirmas://… for "
                    "Confirma's own alert JSON; see the README (Configuration).",
                    id="notifications.E001",
                )
            )
    if settings.ALERT_WEBHOOK_URL:
        messages.append(
            Warning(
                "ALERT_WEBHOOK_URL is deprecated.",
                hint="Put the same address into ALERT_URLS with confirmas:// (or confirma:// "
                "for http) instead of https://: it receives the same JSON.",
                id="notifications.W001",
            )
        )
    return messages
