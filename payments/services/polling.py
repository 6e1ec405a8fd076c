"""Ask the provider about payments we have not heard of for a while.

A webhook can be lost (our outage, theirs, a misconfigured URL). Sessions still pending
or processing some minutes after creation, with a provider payment id, are looked up at
the provider and the answer goes through the one confirmation path (source "poll"), so
a lost notification is repaired without the provider's help.
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from payments.errors import PaymentError
from payments.models import OPEN_STATUSES, AuditSource, PaymentSession
from payments.providers import provider_get, providers_all
from payments.services.confirmation import Evidence, notification_apply

logger = logging.getLogger(__name__)


def pollable_providers() -> list[str]:
    return [adapter.name for adapter in providers_all() if adapter.can_fetch]


@dataclass
class PollReport:
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    not_found: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def providers_poll(*, older_than_seconds: int | None = None, limit: int = 200) -> PollReport:
    """Look up open sessions older than `older_than_seconds` (default the setting) at
    their provider, oldest first, at most `limit` of them."""
    wait = (
        settings.PROVIDER_POLL_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=wait)
    sessions = (
        PaymentSession.objects.filter(
            status__in=OPEN_STATUSES,
            provider__in=pollable_providers(),
            created_at__lte=cutoff,
        )
        .exclude(provider_payment_id="")
        .order_by("created_at")
        .only("reference", "provider", "provider_payment_id")[:limit]
    )
    report = PollReport()
    for session in sessions:
        report.checked += 1
        adapter = provider_get(session.provider)
        try:
            notification = adapter.fetch(session.provider_payment_id)
        except PaymentError as exc:
            report.failed[session.reference] = exc.message
            continue
        except Exception as exc:
            logger.exception("polling %s failed", session.reference)
            report.failed[session.reference] = f"{exc.__class__.__name__}: {exc}"[:300]
            continue
        if notification is None:
            report.not_found.append(session.reference)
            continue
        if notification.reference and notification.reference != session.reference:
            report.failed[session.reference] = "the provider payment names another reference"
            continue
        evidence = Evidence(
            source=AuditSource.POLL,
            data={"provider_status": notification.provider_status},
        )
        try:
            result = notification_apply(_with_reference(notification, session.reference), evidence)
        except PaymentError as exc:
            report.failed[session.reference] = exc.message
            continue
        if result is not None and result.changed:
            report.changed.append(session.reference)
            logger.info(
                "poll: %s is %s at %s",
                session.reference,
                notification.provider_status,
                session.provider,
                extra={"reference": session.reference},
            )
        else:
            report.unchanged += 1
    return report


def _with_reference(notification, reference: str):
    return replace(notification, reference=reference)
