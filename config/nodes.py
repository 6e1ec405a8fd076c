"""What a dead node can leave behind, found and put right from any node that lives.

- **Periodic jobs overdue**: a job whose last run started more than twice its period ago
  (no scheduler claims it: every node with one is down, or cron stopped).
- **Orphaned tasks**: task rows a worker took (RUNNING) and never finished, because the
  worker died: started longer ago than TASK_ORPHAN_SECONDS, and their worker has not beaten
  its heartbeat since WORKER_HEARTBEAT_MAX_AGE. Idempotent tasks run again; the others are
  marked failed with an alert (a print job is taken back by `recover_print_jobs`, which
  prints it again marked REPRINT: once or marked, never silently twice).

Stored webhook deliveries a dead worker had claimed return by their lease
(`payments.services.deliveries`). `monitor_payments check` and the health page report all
three; `monitor_payments check --repair` recovers the orphaned tasks.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from config.models import PeriodicJob, WorkerHeartbeat
from config.services import periodic_job_name
from notifications.services import alert_raise

logger = logging.getLogger(__name__)

# Tasks that may run again when their worker died mid-way: doing them twice is harmless.
RERUNNABLE = {
    "notifications.tasks.alert_webhook_send",
    "payments.tasks.webhook_delivery_retry",
}


@dataclass(frozen=True)
class Overdue:
    name: str
    every_seconds: int
    last_started_at: object
    last_node: str
    late_seconds: int

    def as_dict(self) -> dict:
        return {
            "job": self.name,
            "every_seconds": self.every_seconds,
            "last_started_at": self.last_started_at.isoformat() if self.last_started_at else None,
            "last_node": self.last_node,
            "late_seconds": self.late_seconds,
        }


def periodic_overdue(*, now=None) -> list[Overdue]:
    """Periodic jobs of settings.PERIODIC_JOBS whose last run started more than twice
    their period ago (never run: since the job was first seen)."""
    now = now or timezone.now()
    wanted = {periodic_job_name(job): job["every"] for job in settings.PERIODIC_JOBS}
    jobs = {job.name: job for job in PeriodicJob.objects.filter(name__in=wanted)}
    overdue = []
    for name, every in wanted.items():
        job = jobs.get(name)
        if job is None:
            continue  # no scheduler has ever seen it: cron runs the jobs, or none started yet
        since = job.last_started_at or (job.next_due_at - timedelta(seconds=every))
        late = (now - since).total_seconds() - 2 * every
        if late > 0:
            overdue.append(Overdue(name, every, job.last_started_at, job.last_node, int(late)))
    return overdue


def tasks_orphaned(*, now=None, limit: int = 500) -> list[DBTaskResult]:
    """Task rows left RUNNING by a worker that is gone."""
    now = now or timezone.now()
    started_before = now - timedelta(seconds=settings.TASK_ORPHAN_SECONDS)
    alive_since = now - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)
    alive = set(
        WorkerHeartbeat.objects.filter(last_seen__gte=alive_since).values_list(
            "worker_id", flat=True
        )
    )
    running = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING, started_at__lt=started_before
    ).order_by("started_at")[:limit]
    return [task for task in running if not (set(task.worker_ids or []) & alive)]


def tasks_recover(tasks: list[DBTaskResult]) -> dict[str, str]:
    """Put orphaned tasks right: rerunnable ones back in the queue, the others failed with
    an alert each. Returns {task id: "requeued" | "failed"}; a task that is no longer
    RUNNING when locked is left alone."""
    done = {}
    for orphan in tasks:
        with transaction.atomic():
            task = (
                DBTaskResult.objects.select_for_update(skip_locked=True)
                .filter(pk=orphan.pk, status=TaskResultStatus.RUNNING)
                .first()
            )
            if task is None:
                continue
            worker = (task.worker_ids or ["?"])[-1]
            if task.task_path in RERUNNABLE:
                task.status = TaskResultStatus.READY
                task.run_after = timezone.now()
                task.started_at = None
                task.save(update_fields=["status", "run_after", "started_at"])
                done[str(task.pk)] = "requeued"
            else:
                task.status = TaskResultStatus.FAILED
                task.finished_at = timezone.now()
                task.exception_class_path = "config.nodes.WorkerLost"
                task.traceback = f"its worker {worker} stopped while running it"
                task.save(
                    update_fields=["status", "finished_at", "exception_class_path", "traceback"]
                )
                done[str(task.pk)] = "failed"
            alert_raise(
                code="task.orphaned",
                message="A background task was left running by a worker that stopped.",
                context={
                    "task": str(task.pk),
                    "path": task.task_path,
                    "worker": worker,
                    "action": done[str(task.pk)],
                },
                dedupe_key=f"task:{task.pk}",
            )
        logger.warning(
            "task %s (%s) of stopped worker %s %s",
            task.pk,
            task.task_path,
            worker,
            done[str(task.pk)],
        )
    return done
