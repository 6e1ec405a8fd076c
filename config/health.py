"""Everything staff need to know about the integrations, in one structure: the staff
health page renders it and `/api/integration/status/` returns it as JSON."""

from datetime import timedelta

from django.utils import timezone

from config.nodes import periodic_overdue, tasks_orphaned
from config.selectors import worker_health
from notifications.models import Alert
from payments.selectors import payments_health, webhooks_health
from payments.services.deliveries import backlog
from payments.services.monitor import gaps_find
from tickets.selectors import integration_health, printers_health


def integration_status(*, since=None, gap_limit: int = 50) -> dict:
    now = timezone.now()
    since = since or now - timedelta(days=1)
    gaps, gap_total = gaps_find(limit=gap_limit)
    kiosk = integration_health(since=since)
    return {
        # The kiosk flow's figures stay at the top level (earlier clients read them there).
        **kiosk,
        "generated_at": now.isoformat(),
        "payments": payments_health(since=since),
        "webhooks": webhooks_health(now=now),
        "backlog": backlog(),
        "periodic_overdue": [job.as_dict() for job in periodic_overdue()],
        "orphaned_tasks": len(tasks_orphaned()),
        "gaps": {"total": gap_total, "listed": [g.as_dict() for g in gaps]},
        "printers": printers_health(),
        "worker": worker_health(),
        "open_alerts": Alert.objects.filter(resolved_at__isnull=True).count(),
    }
