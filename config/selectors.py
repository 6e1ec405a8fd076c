"""Reads about the health of the whole system, shared by /healthz and staff pages."""

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.models import WorkerHeartbeat
from payments.services.deliveries import backlog

logger = logging.getLogger(__name__)


def database_health() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc.__class__.__name__)
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": connection.vendor}


async def _layer_round_trip(layer) -> None:
    channel = await layer.new_channel("health.")
    await layer.send(channel, {"type": "health.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "health.ping":
        raise RuntimeError("unexpected message from the channel layer")


def channel_layer_health(timeout: float = 2.0) -> dict:
    """Send one message through the channel layer to itself and read it back."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    layer = get_channel_layer()

    async def check() -> None:
        await asyncio.wait_for(_layer_round_trip(layer), timeout)

    try:
        async_to_sync(check)()
    except Exception as exc:
        logger.warning("health: channel layer failed: %s", exc.__class__.__name__)
        return {"ok": False, "backend": backend, "error": exc.__class__.__name__}
    return {"ok": True, "backend": backend}


def worker_health() -> dict:
    max_age = settings.WORKER_HEARTBEAT_MAX_AGE
    try:
        latest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    if latest is None:
        return {"ok": False, "error": "no_heartbeat", "max_age_seconds": max_age}
    age = (timezone.now() - latest.last_seen).total_seconds()
    return {
        "ok": age <= max_age,
        "last_seen": latest.last_seen.isoformat(),
        "age_seconds": round(age, 1),
        "max_age_seconds": max_age,
        "alive": WorkerHeartbeat.objects.filter(
            last_seen__gte=timezone.now() - timedelta(seconds=max_age)
        ).count(),
    }


def webhooks_backlog_health() -> dict:
    """The webhook workers keep up: the oldest waiting delivery is younger than
    WEBHOOK_BACKLOG_ALERT_SECONDS (waiting deliveries and the oldest's age in seconds)."""
    state = backlog()
    return {"ok": state["oldest_seconds"] <= settings.WEBHOOK_BACKLOG_ALERT_SECONDS, **state}


def system_health() -> dict:
    checks = {
        "database": database_health(),
        "channel_layer": channel_layer_health(),
    }
    checks["worker"] = worker_health() if checks["database"]["ok"] else {"ok": False}
    checks["webhooks"] = webhooks_backlog_health() if checks["database"]["ok"] else {"ok": False}
    checks["status"] = "ok" if all(c["ok"] for c in checks.values()) else "fail"
    return checks
