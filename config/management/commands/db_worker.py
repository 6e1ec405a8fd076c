"""`manage.py db_worker`: django-tasks-db's worker, plus a heartbeat /healthz can read.

The heartbeat is written from the worker's own loop (before each task and while idle), so
a worker that is stuck or dead stops beating and /healthz turns to 503. Exit status 0 when
it stops, 2 when it could not run (bad option, database unavailable).
"""

import os
import time

from django.conf import settings
from django.db import connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands.db_worker import Command as WorkerCommand
from django_tasks_db.management.commands.db_worker import Worker

from config.services import worker_heartbeat_beat
from core.commands import ConfirmaCommand, usage_error


class HeartbeatWorker(Worker):
    """Runs the base loop in batch mode (it returns when the queue is empty), then beats,
    sleeps and starts it again; `keep_running=False` keeps the real batch behaviour."""

    def __init__(self, *, keep_running: bool, poll_interval: float, **kwargs) -> None:
        super().__init__(batch=True, interval=0, **kwargs)
        self.keep_running = keep_running
        self.poll_interval = poll_interval
        self._last_beat = 0.0

    def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= settings.WORKER_HEARTBEAT_INTERVAL:
            worker_heartbeat_beat(worker_id=self.worker_id, tasks_run=self._run_tasks)
            self._last_beat = now

    def run_task(self, db_task_result) -> None:
        self.beat()
        super().run_task(db_task_result)

    def run(self) -> None:
        self.beat(force=True)
        while self.running:
            super().run()
            done = self.max_tasks is not None and self._run_tasks >= self.max_tasks
            if done or not self.keep_running:
                break
            self.beat()
            if self.running:
                time.sleep(self.poll_interval)
        self.beat(force=True)


class Command(ConfirmaCommand, WorkerCommand):
    help = "Run a database background worker that writes a heartbeat."

    def handle(
        self,
        *,
        verbosity,
        queue_name,
        interval,
        batch,
        backend_name,
        startup_delay,
        reload,
        max_tasks,
        worker_id,
        exclude_queues,
        **options,
    ):
        self.configure_logging(verbosity)
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise usage_error("--exclude-queues can only be used with --queue-name=*")
        connection.ensure_connection()  # unreachable: status 2 now, not a worker that dies
        worker = HeartbeatWorker(
            keep_running=not batch,
            poll_interval=interval,
            queue_names=queue_names,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        if reload and not batch:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
