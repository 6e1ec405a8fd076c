import os
import subprocess
import sys
import time

import pytest

from config.models import WorkerHeartbeat
from notifications.models import Event
from notifications.tasks import event_publish_task
from tests.conftest import _missing
from tests.notifications.test_services import _database_url

pytestmark = pytest.mark.django_db(transaction=True)


def run_worker(*args, timeout=60):
    env = dict(os.environ, DATABASE_URL=_database_url())
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", *args],
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def file_database(settings):
    from django.db import connection

    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(
        ("file:", ":memory:")
    ):
        _missing("a database the worker process can share (PostgreSQL)")


def test_worker_runs_tasks_and_writes_heartbeat(file_database):
    result = event_publish_task.enqueue(
        audience=["role:staff"], type="staff.notice", payload={"text": "hi"}
    )
    done = run_worker("--batch", "-v0")
    assert done.returncode == 0, done.stderr
    result.refresh()
    assert result.status.name == "SUCCESSFUL"
    assert Event.objects.filter(type="staff.notice").count() == 1
    beat = WorkerHeartbeat.objects.get()
    assert beat.tasks_run == 1
    assert beat.pid != os.getpid()


def test_worker_keeps_beating_while_idle(file_database):
    env = dict(os.environ, DATABASE_URL=_database_url(), WORKER_HEARTBEAT_INTERVAL="0.2")
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-reload",
            "--no-startup-delay",
            "--interval",
            "0.1",
            "-v0",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        first = None
        while time.monotonic() < deadline:
            beat = WorkerHeartbeat.objects.first()
            if beat and first is None:
                first = beat.last_seen
            if beat and first and beat.last_seen > first:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the idle worker did not refresh its heartbeat")
    finally:
        process.terminate()
        process.wait(timeout=10)
