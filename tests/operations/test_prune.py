"""`prune`: events, webhook deliveries and resolved alerts past their retention go, in
batches; failed and unresolved dead deliveries, recent rows and open alerts stay."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications.models import Event
from payments.models import AuditSource, DeliveryStatus
from payments.services.retention import delivery_resolve
from tests.factories import (
    AlertFactory,
    EventFactory,
    PaymentAuditFactory,
    UserFactory,
    WebhookDeliveryFactory,
)
from tests.operations.test_expiry import kiosk_session

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def ago(days: float):
    return timezone.now() - timedelta(days=days)


def delivery(status, *, days, resolved=False):
    return WebhookDeliveryFactory(
        provider="kiosk",
        status=status,
        received_at=ago(days),
        body=b"{}",
        resolved_at=ago(1) if resolved else None,
    )


def alert(code, *, resolved_days=None):
    return AlertFactory(
        code=code,
        resolved_at=ago(resolved_days) if resolved_days is not None else None,
    )


def prune(*args) -> dict:
    out = io.StringIO()
    call_command("prune", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def world(settings):
    """Rows on both sides of every retention (events 30 days, the rest 90 days)."""
    settings.EVENTS_RETENTION = "30d"
    settings.WEBHOOK_RETENTION_DAYS = 90
    settings.ALERT_RETENTION_DAYS = 90
    old_event = EventFactory()
    Event.objects.filter(pk=old_event.pk).update(created_at=ago(31))
    new_event = EventFactory()
    old_processed = delivery(DeliveryStatus.PROCESSED, days=91)
    # An audit row that names the old delivery as evidence outlives it.
    session = kiosk_session()
    audit = PaymentAuditFactory(
        session=session, action="note", source=AuditSource.WEBHOOK, delivery=old_processed
    )
    return {
        "gone": {
            "event": old_event,
            "processed": old_processed,
            "rejected": delivery(DeliveryStatus.REJECTED, days=200),
            "dead_resolved": delivery(DeliveryStatus.DEAD, days=120, resolved=True),
            "alert": alert("old.resolved", resolved_days=91),
        },
        "kept": {
            "event": new_event,
            "recent": delivery(DeliveryStatus.PROCESSED, days=89),
            "dead_unresolved": delivery(DeliveryStatus.DEAD, days=300),
            "failed": delivery(DeliveryStatus.FAILED, days=100),
            "open_alert": alert("old.open"),
            "recent_alert": alert("recently.resolved", resolved_days=10),
        },
        "audit": audit,
    }


def exists(obj) -> bool:
    return type(obj).objects.filter(pk=obj.pk).exists()


def test_a_dry_run_counts_and_deletes_nothing(world):
    assert prune("--dry-run") == {"events": 1, "deliveries": 3, "alerts": 1, "dry_run": True}
    assert all(exists(obj) for obj in world["gone"].values())


def test_prune_deletes_only_what_is_past_retention(world):
    assert prune("--batch-size", "1") == {
        "events": 1,
        "deliveries": 3,
        "alerts": 1,
        "dry_run": False,
    }
    assert not any(exists(obj) for obj in world["gone"].values())
    assert all(exists(obj) for obj in world["kept"].values())
    world["audit"].refresh_from_db()
    assert world["audit"].delivery is None
    # Nothing more to do the second time.
    assert prune() == {"events": 0, "deliveries": 0, "alerts": 0, "dry_run": False}


def test_a_dead_delivery_goes_once_staff_resolved_it(world):
    dead = world["kept"]["dead_unresolved"]
    assert delivery_resolve(delivery_id=dead.pk)
    assert not delivery_resolve(delivery_id=dead.pk)  # already resolved
    assert not delivery_resolve(delivery_id=world["kept"]["failed"].pk)  # not dead
    assert prune()["deliveries"] == 4
    assert not exists(dead)


def test_the_plain_summary_line(world):
    out = io.StringIO()
    call_command("prune", "--dry-run", stdout=out)
    assert out.getvalue().strip() == (
        "would prune 1 events, 3 webhook deliveries and 1 resolved alerts"
    )


def test_staff_resolve_dead_deliveries_from_the_admin(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    dead = delivery(DeliveryStatus.DEAD, days=1)
    failed = delivery(DeliveryStatus.FAILED, days=1)
    client.post(
        "/admin/payments/webhookdelivery/",
        {"action": "mark_resolved", ACTION_CHECKBOX_NAME: [dead.pk, failed.pk], "apply": "1"},
    )
    dead.refresh_from_db()
    failed.refresh_from_db()
    assert dead.resolved_at is not None and failed.resolved_at is None


def test_prune_events_still_works(world):
    out = io.StringIO()
    call_command("prune_events", "--older-than", "30d", stdout=out)
    assert out.getvalue().strip() == "pruned 1 events older than 30d"
    assert exists(world["kept"]["event"])


def test_a_bad_retention_or_option_exits_2(settings):
    settings.EVENTS_RETENTION = "forever"
    with pytest.raises(CommandError, match="EVENTS_RETENTION") as caught:
        call_command("prune")
    assert caught.value.returncode == 2
    settings.EVENTS_RETENTION = "30d"
    settings.WEBHOOK_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="WEBHOOK_RETENTION_DAYS") as caught:
        call_command("prune")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="at least 1") as caught:
        call_command("prune", "--batch-size", "0")
    assert caught.value.returncode == 2


def test_prune_replaces_prune_events_in_the_periodic_jobs():
    jobs = {job["command"]: job["every"] for job in django_settings.PERIODIC_JOBS}
    assert jobs["prune"] == 3600 and "prune_events" not in jobs
