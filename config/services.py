"""Writes that belong to the project as a whole (worker heartbeats)."""

import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from config.models import PeriodicJob, WorkerHeartbeat


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


def periodic_job_name(job: dict) -> str:
    """A job of settings.PERIODIC_JOBS by name: its command and arguments."""
    return " ".join([job["command"], *job.get("args", [])])[:100]


def periodic_claim(*, name: str, every: int, node: str) -> bool:
    """Claim this period's run of job `name` for `node`: True for exactly one of the nodes
    asking while it is due (the conditional UPDATE moves its next due time on), False for
    every other, and until the period has passed."""
    now = timezone.now()
    if not PeriodicJob.objects.filter(name=name).exists():
        try:
            with transaction.atomic():
                PeriodicJob.objects.create(name=name, every_seconds=every, next_due_at=now)
        except IntegrityError:
            pass  # another node created it first
    claimed = PeriodicJob.objects.filter(name=name, next_due_at__lte=now).update(
        next_due_at=now + timedelta(seconds=every),
        every_seconds=every,
        last_started_at=now,
        last_node=node[:120],
        runs=F("runs") + 1,
    )
    return claimed == 1


def periodic_finish(*, name: str, status: str) -> None:
    """Record how this node's run of job `name` ended: ok, findings (exit 1) or failed."""
    PeriodicJob.objects.filter(name=name).update(
        last_finished_at=timezone.now(), last_status=status[:20]
    )
