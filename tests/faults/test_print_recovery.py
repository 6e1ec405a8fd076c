"""`print_jobs_recover`: print jobs a dead worker left behind are taken back, once; one
whose bytes may already be on paper is re-sent marked REPRINT, and the operators told."""

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from notifications.models import Alert, Event
from tests.factories import PrinterFactory
from tests.faults.harness import SlowPrinter, wait_until
from tests.tickets.conftest import kiosk_session, pay_at_kiosk
from tickets.models import PrintJob, PrintJobStatus, TicketEvent, TicketStatus
from tickets.printing import reprint_banner_render
from tickets.services import (
    PrintRecovery,
    print_job_run,
    print_jobs_recover,
    print_lease_seconds,
    print_send,
)

pytestmark = pytest.mark.faults


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


@pytest.fixture
def paid_job(db, kiosk_secret, service, loopback_printer):
    PrinterFactory(name="Balcão", url=loopback_printer.url)
    session = kiosk_session(service)
    paid = pay_at_kiosk(Client(), kiosk_secret, session)
    assert (paid.status_code, paid.json()["status"]) == (200, "processed")
    return PrintJob.objects.get()


def die_while_sending(monkeypatch, job: PrintJob) -> None:
    """Run the job's task until the worker "dies" with the bytes on their way."""

    def killed(url, data, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(print_send, "printer_send", killed)
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
    assert print_jobs_recover() == PrintRecovery()
    age(paid_job, print_lease_seconds() - 2)
    assert print_jobs_recover() == PrintRecovery()

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
        assert print_jobs_recover(older_than=0.001) == PrintRecovery()
    assert TicketEvent.objects.filter(type="print_recovered").count() == 1

    # The late failure of the abandoned attempt changes nothing any more.
    assert print_send._print_failed(paid_job.pk, "timed out", attempt=1) == PrintJobStatus.QUEUED
    paid_job.refresh_from_db()
    assert paid_job.attempts == 1 and "worker stopped" in paid_job.last_error

    marked = bytes(PrintJob.objects.get(pk=paid_job.pk).data)
    assert print_job_run(job_id=paid_job.pk) == PrintJobStatus.PRINTED
    # The abandoned attempt may have printed: the copy sent again says REPRINT.
    (printed,) = loopback_printer.jobs
    assert printed == marked and printed.startswith(reprint_banner_render())
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
    assert print_jobs_recover() == PrintRecovery()  # too young to judge
    age(paid_job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover().requeued == [paid_job.pk]
    assert print_tasks(paid_job).filter(status=TaskResultStatus.READY).count() == 1
    (event,) = TicketEvent.objects.filter(type="print_recovered")
    assert event.data["was"] == "queued" and event.data["attempt"] == 0
    # Its task now waits: nothing more to do, however old the job is.
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover(older_than=0.001) == PrintRecovery()
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
    PrinterFactory(name="Balcão")
    jobs = []
    for _ in range(5):
        paid = pay_at_kiosk(Client(), kiosk_secret, kiosk_session(service))
        assert paid.json()["status"] == "processed"
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

    monkeypatch.setattr(print_send, "printer_send", slow_but_fine)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_job_run(job_id=paid_job.pk) == PrintJobStatus.PRINTED
    ticket = paid_job.ticket.__class__.objects.get()
    assert ticket.status == TicketStatus.IN_QUEUE and ticket.printed_at
    assert Event.objects.filter(type="ticket.printed", audience="role:operator").count() == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_with_the_ticket_on_paper_reprints_it_once_marked_reprint(make_stack):
    """Through the real processes: the worker is SIGKILLed after the printer took the
    whole job and before the result was recorded; after a restart and the sweep the
    printer gets the ticket a second and last time, under a REPRINT banner, and the
    operators hear of it."""
    stack = make_stack(
        env={
            "PRINT_TIMEOUT_SECONDS": "5.0",
            "PRINT_MAX_ATTEMPTS": "3",
            "PRINT_RETRY_BASE_SECONDS": "0.2",
        }
    )
    stack.start_server()
    # Holds each job's answer 3 s (the worker waits up to 5 s): the kill comes in between.
    printer = SlowPrinter(delay=3.0).on()
    try:
        stack.point_printers_at(printer.url)
        (session,) = stack.ticket_sessions(1)
        stack.start_worker()
        with requests.Session() as http:
            answer = stack.pay(http, session)
            assert (answer.status_code, answer.json()["status"]) == (200, "accepted")
        wait_until(printer.holding.is_set, timeout=60, interval=0.01, what="the job on paper")
        stack.kill_worker()
        printer.delay = 0.0
        (first,) = printer.jobs
        assert session["reference"].encode() in first and b"REPRINT" not in first

        def job_row():
            (row,) = stack.sql(
                "SELECT j.id, j.status, j.attempts, j.reprint_marked, t.id, t.status "
                "FROM tickets_printjob j JOIN tickets_ticket t ON t.id = j.ticket_id"
            )
            return row

        job_id, *state, ticket_id, ticket_status = job_row()
        assert (state, ticket_status) == (["sending", 1, False], "printing")

        # A restarted worker does not send it again on its own; the sweep takes it back.
        stack.start_worker()
        time.sleep(2.5)
        assert job_row()[1:4] == ("sending", 1, False) and len(printer.jobs) == 1
        assert "1 re-queued, 0 failed" in stack.manage("recover_print_jobs", "--older-than", "2")
        wait_until(lambda: job_row()[1] == "printed", timeout=30, what="the job printed")
        assert job_row()[1:] == ("printed", 2, True, ticket_id, "in_queue")

        # Twice, and never more: the second copy is the first under the REPRINT banner.
        assert "0 re-queued, 0 failed" in stack.manage("recover_print_jobs", "--older-than", "1")
        time.sleep(1)
        assert len(printer.jobs) == 2
        assert printer.jobs[1] == reprint_banner_render() + first

        events = stack.sql(
            "SELECT type, data FROM tickets_ticketevent WHERE ticket_id = %s ORDER BY id",
            (ticket_id,),
        )
        types = [type_ for type_, _data in events]
        assert types[-3:] == ["print_recovered", "print_interrupted", "in_queue"], types
        interrupted = events[-2][1]
        assert (interrupted["job"], interrupted["attempt"]) == (job_id, 1)
        assert interrupted["resend"] == "marked_reprint"

        told = stack.sql(
            "SELECT audience, payload->>'code', payload->>'job' FROM notifications_event "
            "WHERE type = 'ticket.print_interrupted'"
        )
        assert [(a, j) for a, _code, j in told] == [("role:operator", str(job_id))]
        # A duplicate slip is the operators' business: no staff alert.
        assert not stack.sql("SELECT 1 FROM notifications_alert WHERE code LIKE 'ticket.%%'")
        panel = stack.login("operator").get(stack.url + "/operator/panel/", timeout=30)
        assert panel.text.count("data-reprint") == 1 and told[0][1] in panel.text
    finally:
        printer.off()
