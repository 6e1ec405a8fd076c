"""Writes that belong to the project as a whole (worker heartbeats)."""

import os
import socket

from django.utils import timezone

from config.models import WorkerHeartbeat


def worker_heartbeat_beat(*, worker_id: str, tasks_run: int) -> WorkerHeartbeat:
    """Record that worker `worker_id` (this process) is alive now."""
    now = timezone.now()
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "last_seen": now,
            "tasks_run": tasks_run,
        },
        create_defaults={
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "last_seen": now,
            "tasks_run": tasks_run,
        },
    )
    return heartbeat
