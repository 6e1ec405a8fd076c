"""Printing on a real (loopback) network printer: bytes, accents, failures, reprint."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from notifications.models import Event
from tests.factories import PrinterFactory, UserFactory
from tests.tickets.conftest import closed_port_url, kiosk_session, pay_at_kiosk
from tickets.models import Printer, PrintJob, PrintJobStatus, Ticket, TicketStatus
from tickets.services import print_job_run
from tickets.services.desks import ticket_reprint_request


def test_ticket_bytes_reach_the_printer_with_number_service_and_accents(
    client,
    kiosk_secret,
    service,
    printer,
    loopback_printer,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.BUSINESS_NAME = "Cartório São João"
    session = kiosk_session(service, customer_name="Iñés Conceição Souza", cpf="529.982.247-25")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert pay_at_kiosk(client, kiosk_secret, session).status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.code == "A-001" and ticket.status == TicketStatus.PAID
    assert callbacks  # the print task waits for the commit
    job = PrintJob.objects.get()
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED

    (received,) = loopback_printer.jobs
    assert b"\x1bt\x03" in received  # code page CP860 selected
    for text in (
        "A-001",
        "Emissão de 2ª via",
        "Cartório São João",
        "Iñés S.",
        "CPF ***.***.***-25",
    ):
        assert text.encode("cp860") in received, text
    assert "Conceição".encode("cp860") not in received  # the name is printed masked
    assert b"529.982" not in received and b"52998224725" not in received
    assert session.reference.encode() in received  # in the QR code
    assert received.endswith(b"\x1dV\x00")  # cut
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_QUEUE and ticket.printed_at
    assert Printer.objects.get().last_success_at
    assert Event.objects.filter(
        type="ticket.printed", audience=f"payment:{session.reference}"
    ).exists()


@pytest.mark.parametrize("kind", ["closed", "deaf"])
def test_unreachable_printer_ends_in_print_error_then_reprint_succeeds(
    client, kiosk_secret, service, settings, deaf_printer, loopback_printer, kind
):
    settings.PRINT_TIMEOUT_SECONDS = 0.3
    settings.PRINT_MAX_ATTEMPTS = 2
    url = closed_port_url() if kind == "closed" else deaf_printer.url
    bad = PrinterFactory(name="Broken", url=url)
    session = kiosk_session(service)
    pay_at_kiosk(client, kiosk_secret, session)
    job = PrintJob.objects.get()
    assert job.printer == bad

    started = time.monotonic()
    assert print_job_run(job_id=job.pk) == PrintJobStatus.QUEUED
    assert print_job_run(job_id=job.pk) == PrintJobStatus.FAILED
    assert time.monotonic() - started < 2 * 0.3 * 3 + 1  # bounded by the timeouts
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.PRINT_ERROR
    job.refresh_from_db()
    assert job.attempts == 2 and job.last_error
    bad.refresh_from_db()
    assert bad.last_error and bad.last_error_at
    assert Event.objects.filter(
        type="alert.raised", audience="role:staff", payload__code="ticket.print_error"
    ).exists()
    assert Event.objects.filter(type="alert.raised", audience="role:operator").exists()
    assert Event.objects.filter(type="ticket.print_error").exists()

    bad.url = loopback_printer.url
    bad.save()
    reprint = ticket_reprint_request(
        ticket_id=ticket.pk, actor=UserFactory(roles=["operator"]), reason="Paper jammed"
    )
    assert reprint.pk != job.pk
    assert print_job_run(job_id=reprint.pk) == PrintJobStatus.PRINTED
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_QUEUE
    assert len(loopback_printer.jobs) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_hanging_printer_never_hangs_the_worker(kiosk_secret, service, deaf_printer):
    """Through the real worker process: the deaf printer's job fails after its attempts
    in bounded time, and the worker goes on to the next job."""
    from django.test import Client

    from tests.notifications.test_services import _database_url

    PrinterFactory(name="Deaf", url=deaf_printer.url)
    sessions = [kiosk_session(service) for _ in range(2)]
    for session in sessions:
        pay_at_kiosk(Client(), kiosk_secret, session)
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(),
        PRINT_TIMEOUT_SECONDS="0.4",
        PRINT_MAX_ATTEMPTS="2",
        PRINT_RETRY_BASE_SECONDS="0",
        KIOSK_WEBHOOK_SECRET="x",
    )
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--batch",
            "--no-reload",
            "--no-startup-delay",
            "-v0",
        ],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 20
    assert set(Ticket.objects.values_list("status", flat=True)) == {TicketStatus.PRINT_ERROR}
    assert set(PrintJob.objects.values_list("attempts", flat=True)) == {2}
    connection.close()
