"""Many nodes: periodic jobs claimed once per period whatever the number of schedulers,
and what a dead node leaves behind (orphaned tasks, overdue jobs) found and put right."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from config.models import PeriodicJob
from config.nodes import periodic_overdue, tasks_orphaned
from config.services import periodic_claim, periodic_finish, worker_heartbeat_beat
from notifications.models import Alert
from tests.factories import TaskResultFactory

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_several_schedulers_at_once_claim_each_period_once():
    schedulers, periods = 8, 3
    barrier = threading.Barrier(schedulers)
    claims = []

    def scheduler(index: int) -> None:
        try:
            for period in range(periods):
                barrier.wait(timeout=20)
                if periodic_claim(name="expire", every=60, node=f"node-{index}"):
                    claims.append((period, index))
                barrier.wait(timeout=20)
                if index == 0:  # the period passes
                    PeriodicJob.objects.filter(name="expire").update(
                        next_due_at=timezone.now() - timedelta(seconds=1)
                    )
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(period for period, _ in claims) == list(range(periods)), claims
    assert PeriodicJob.objects.get(name="expire").runs == periods


def test_a_scheduler_that_died_mid_run_does_not_stop_the_job():
    assert periodic_claim(name="prune", every=60, node="node-a")  # node A dies right here
    assert not periodic_claim(name="prune", every=60, node="node-b")  # A's period
    PeriodicJob.objects.filter(name="prune").update(next_due_at=timezone.now())
    assert periodic_claim(name="prune", every=60, node="node-b")  # the next period: B
    periodic_finish(name="prune", status="ok")
    job = PeriodicJob.objects.get(name="prune")
    assert (job.last_node, job.last_status, job.runs) == ("node-b", "ok", 2)


def test_run_periodic_once_runs_due_jobs_and_records_them(settings):
    settings.PERIODIC_JOBS = [{"command": "expire_subscriptions", "every": 60}]
    call_command("run_periodic", "--once")
    call_command("run_periodic", "--once")  # a second scheduler, same period: nothing
    job = PeriodicJob.objects.get(name="expire_subscriptions")
    assert (job.runs, job.last_status) == (1, "ok")
    assert job.last_finished_at >= job.last_started_at


def test_an_overdue_job_is_reported_and_fails_the_check(settings, capsys):
    settings.PERIODIC_JOBS = [{"command": "prune", "every": 60}]
    assert periodic_claim(name="prune", every=60, node="node-a")
    assert periodic_overdue() == []
    PeriodicJob.objects.filter(name="prune").update(
        last_started_at=timezone.now() - timedelta(seconds=200)
    )
    (late,) = periodic_overdue()
    assert (late.name, late.last_node) == ("prune", "node-a") and late.late_seconds >= 79
    with pytest.raises(SystemExit) as exit_:
        call_command("monitor_payments", "check")
    assert exit_.value.code == 1
    assert "periodic job 'prune' overdue" in capsys.readouterr().out


def _running(path: str, *, worker: str, minutes: int = 10) -> DBTaskResult:
    return TaskResultFactory(
        status=TaskResultStatus.RUNNING,
        task_path=path,
        started_at=timezone.now() - timedelta(minutes=minutes),
        worker_ids=[worker],
    )


def test_tasks_left_running_by_a_stopped_worker_are_recovered_once(settings, capsys):
    settings.PERIODIC_JOBS = []
    worker_heartbeat_beat(worker_id="alive", tasks_run=0)
    printing = _running("tickets.tasks.print_job_send", worker="dead")
    alert = _running("notifications.tasks.alert_webhook_send", worker="dead")
    _running("tickets.tasks.print_job_send", worker="alive")  # its worker still beats
    _running("tickets.tasks.print_job_send", worker="dead", minutes=1)  # not long enough
    assert {t.pk for t in tasks_orphaned()} == {printing.pk, alert.pk}
    with pytest.raises(SystemExit) as exit_:
        call_command("monitor_payments", "check")
    assert exit_.value.code == 1
    assert "left running by a stopped worker" in capsys.readouterr().out
    call_command("monitor_payments", "check", "--repair")  # recovered: nothing left, exit 0
    printing.refresh_from_db()
    alert.refresh_from_db()
    assert printing.status == TaskResultStatus.FAILED  # a print job is never re-sent blindly
    assert alert.status == TaskResultStatus.READY  # sending an alert again is harmless
    assert tasks_orphaned() == []
    assert Alert.objects.filter(code="task.orphaned").count() == 2
    call_command("monitor_payments", "check", "--repair")
    assert Alert.objects.filter(code="task.orphaned").count() == 2


def test_the_health_page_shows_what_a_dead_node_left(client, settings):
    from tests.factories import UserFactory

    settings.PERIODIC_JOBS = [{"command": "prune", "every": 60}]
    periodic_claim(name="prune", every=60, node="node-a")
    PeriodicJob.objects.filter(name="prune").update(
        last_started_at=timezone.now() - timedelta(hours=1)
    )
    _running("tickets.tasks.print_job_send", worker=f"dead-{uuid.uuid4().hex[:6]}")
    client.force_login(UserFactory(roles=["staff"]))
    status = client.get("/api/integration/status/").json()
    assert status["orphaned_tasks"] == 1
    assert [job["job"] for job in status["periodic_overdue"]] == ["prune"]
    page = client.get("/operations/").content.decode()
    assert 'id="periodic-overdue"' in page and 'id="orphaned-tasks"' in page
