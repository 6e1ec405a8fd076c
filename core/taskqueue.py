"""Enqueueing one task many times at once (a batch of tickets, each with a print job)."""

from django.utils.module_loading import import_string
from django_tasks.signals import task_enqueued
from django_tasks.utils import normalize_json
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max


def tasks_enqueue(task, calls: list[dict]) -> None:
    """Enqueue `task` once for each keyword-argument set in `calls`, as `task.enqueue`
    would: with the database backend in one INSERT (one commit for a batch, not one per
    task), with any other backend one by one. Call it after commit, like `enqueue`."""
    backend = task.get_backend()
    if len(calls) < 2 or not isinstance(backend, DatabaseBackend):
        for kwargs in calls:
            task.enqueue(**kwargs)
        return
    backend.validate_task(task)
    rows = [
        DBTaskResult(
            id=backend._get_id(),  # the backend's own id choice (its `id_function` option)
            args_kwargs=normalize_json({"args": (), "kwargs": kwargs}),
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after or get_date_max(),  # as the backend's pre_save does
            backend_name=backend.alias,
        )
        for kwargs in calls
    ]
    DBTaskResult.objects.bulk_create(rows)
    for row in rows:
        task_enqueued.send(type(backend), task_result=row.task_result)


class TaskRef:
    """A task named by its dotted path, looked up the first time it is used.

    A service that queues the task which runs that same service (a retry, a recovery)
    cannot import the task module: the task module imports the service. As Django names a
    model by "app_label.Model" where an import would go round in a circle, the service
    names the task by its path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._task = None

    @property
    def task(self):
        if self._task is None:
            self._task = import_string(self.path)
        return self._task
