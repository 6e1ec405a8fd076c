"""`print_jobs_recover`: print jobs a dead worker left behind are taken back, once."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from notifications.models import Alert, Event
from tests.tickets.conftest import kiosk_session, pay_at_kiosk
from tickets import services
from tickets.models import Printer, PrintJob, PrintJobStatus, TicketEvent, TicketStatus
from tickets.services import print_job_run, print_jobs_recover, print_lease_seconds

pytestmark = pytest.mark.faults


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


@pytest.fixture
def paid_job(db, kiosk_secret, service, loopback_printer):
    Printer.objects.create(name="Balcão", url=loopback_printer.url)
    session = kiosk_session(service)
    assert pay_at_kiosk(Client(), kiosk_secret, session).status_code == 200
    return PrintJob.objects.get()


def die_while_sending(monkeypatch, job: PrintJob) -> None:
    """Run the job's task until the worker "dies" with the bytes on their way."""

    def killed(url, data, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(services, "printer_send", killed)
    with pytest.raises(WorkerKilled):
        print_job_run(job_id=job.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    assert job.status == PrintJobStatus.SENDING and job.sent_at


def age(job: PrintJob, seconds: float) -> None:
    """Make the job's attempt (or creation) look `seconds` older."""
    job.refresh_from_db()
    PrintJob.objects.filter(pk=job.pk).update(
        sent_at=job.sent_at and job.sent_at - timedelta(seconds=seconds),
        created_at=job.created_at - timedelta(seconds=seconds),
    )


def print_tasks(job: PrintJob):
    return DBTaskResult.objects.filter(
        task_path="tickets.tasks.print_job_send", args_kwargs__kwargs__job_id=job.pk
    )


def test_a_job_left_sending_is_requeued_once_after_its_lease_and_then_printed(
    paid_job, monkeypatch, settings, loopback_printer, django_capture_on_commit_callbacks
):
    settings.PRINT_RETRY_BASE_SECONDS = 0
    die_while_sending(monkeypatch, paid_job)
    assert print_lease_seconds() == 3 * settings.PRINT_TIMEOUT_SECONDS + 10

    # Within its lease the attempt may still be going on: left alone.
    assert print_jobs_recover() == services.PrintRecovery()
    age(paid_job, print_lease_seconds() - 2)
    assert print_jobs_recover() == services.PrintRecovery()

    age(paid_job, 3)
    with django_capture_on_commit_callbacks(execute=True):
        report = print_jobs_recover()
    assert report.requeued == [paid_job.pk] and report.failed == []
    paid_job.refresh_from_db()
    assert paid_job.status == PrintJobStatus.QUEUED and paid_job.attempts == 1
    assert "worker stopped" in paid_job.last_error
    (event,) = TicketEvent.objects.filter(type="print_recovered")
    assert event.data["job"] == paid_job.pk and event.data["was"] == "sending"
    assert event.data["outcome"] == "queued" and event.data["attempt"] == 1
    assert print_tasks(paid_job).filter(status=TaskResultStatus.READY).count() == 1

    # Exactly once: a second sweep finds nothing to do.
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover(older_than=0.001) == services.PrintRecovery()
    assert TicketEvent.objects.filter(type="print_recovered").count() == 1

    # The late failure of the abandoned attempt changes nothing any more.
    assert services._print_failed(paid_job.pk, "timed out", attempt=1) == PrintJobStatus.QUEUED
    paid_job.refresh_from_db()
    assert paid_job.attempts == 1 and "worker stopped" in paid_job.last_error

    assert print_job_run(job_id=paid_job.pk) == PrintJobStatus.PRINTED
    assert len(loopback_printer.jobs) == 1
    assert paid_job.ticket.__class__.objects.get().status == TicketStatus.IN_QUEUE


def test_a_job_left_sending_at_its_last_attempt_fails_and_alerts(
    paid_job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.PRINT_MAX_ATTEMPTS = 1
    die_while_sending(monkeypatch, paid_job)
    age(paid_job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        report = print_jobs_recover()
    assert report.failed == [paid_job.pk] and report.requeued == []
    paid_job.refresh_from_db()
    assert paid_job.status == PrintJobStatus.FAILED
    ticket = paid_job.ticket
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PRINT_ERROR
    types = list(ticket.events.values_list("type", flat=True))
    assert types[-2:] == ["print_recovered", TicketStatus.PRINT_ERROR]
    assert Alert.objects.filter(code="ticket.print_error", context__job=paid_job.pk).count() == 1
    assert Event.objects.filter(type="alert.raised", audience="role:operator").count() == 1
    assert not print_tasks(paid_job).filter(status=TaskResultStatus.READY).exists()


def test_a_queued_job_whose_task_was_lost_is_queued_again(
    paid_job, django_capture_on_commit_callbacks
):
    # The payment's on-commit enqueue never ran here: the job has no task, as when a
    # worker dies between taking the task and starting the attempt.
    assert not print_tasks(paid_job).exists()
    assert print_jobs_recover() == services.PrintRecovery()  # too young to judge
    age(paid_job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover().requeued == [paid_job.pk]
    assert print_tasks(paid_job).filter(status=TaskResultStatus.READY).count() == 1
    (event,) = TicketEvent.objects.filter(type="print_recovered")
    assert event.data["was"] == "queued" and event.data["attempt"] == 0
    # Its task now waits: nothing more to do, however old the job is.
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover(older_than=0.001) == services.PrintRecovery()
    # A task taken by a worker that died long ago does not count as waiting.
    print_tasks(paid_job).update(
        status=TaskResultStatus.RUNNING, started_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover(older_than=5).requeued == [paid_job.pk]
    assert print_tasks(paid_job).filter(status=TaskResultStatus.READY).count() == 1


def test_the_periodic_command_reports_what_it_took_back(paid_job, monkeypatch, capsys, settings):
    assert "recover_print_jobs" in {job["command"] for job in settings.PERIODIC_JOBS}
    die_while_sending(monkeypatch, paid_job)
    age(paid_job, 5)
    call_command("recover_print_jobs", "--older-than", "3")
    assert "1 re-queued, 0 failed" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_take_a_job_back_exactly_once(kiosk_secret, service, monkeypatch):
    Printer.objects.create(name="Balcão", url="dummy:")
    jobs = []
    for _ in range(5):
        pay_at_kiosk(Client(), kiosk_secret, kiosk_session(service))
    for job in PrintJob.objects.order_by("pk"):
        die_while_sending(monkeypatch, job)
        age(job, 120)
        jobs.append(job.pk)

    reports, barrier = [], threading.Barrier(4)

    def sweep():
        barrier.wait()
        try:
            reports.append(print_jobs_recover())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) == 4
    assert sorted(j for r in reports for j in r.requeued) == jobs
    assert TicketEvent.objects.filter(type="print_recovered").count() == 5
    assert set(PrintJob.objects.values_list("status", flat=True)) == {PrintJobStatus.QUEUED}


def test_an_attempt_given_up_on_that_prints_after_all_puts_the_ticket_in_the_queue(
    paid_job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """A printer slower than the lease: the sweep fails the job (last attempt) while the
    bytes are still on their way, then the printer takes them. The ticket was printed."""
    settings.PRINT_MAX_ATTEMPTS = 1

    def slow_but_fine(url, data, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            assert print_jobs_recover(older_than=0).failed == [paid_job.pk]
        assert paid_job.ticket.__class__.objects.get().status == TicketStatus.PRINT_ERROR

    monkeypatch.setattr(services, "printer_send", slow_but_fine)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_job_run(job_id=paid_job.pk) == PrintJobStatus.PRINTED
    ticket = paid_job.ticket.__class__.objects.get()
    assert ticket.status == TicketStatus.IN_QUEUE and ticket.printed_at
    assert Event.objects.filter(type="ticket.printed", audience="role:operator").count() == 1
