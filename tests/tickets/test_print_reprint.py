"""A half-sent print job (its bytes may be on paper, its result was never recorded) is
sent again once, with a REPRINT banner above the ticket; the ticket's audit trail says
so and the operators are told."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from notifications.models import Alert, Event
from payments.errors import InvalidParams
from tests.factories import KioskFactory, PrinterFactory, UserFactory
from tests.tickets.conftest import closed_port_url, kiosk_session, pay_at_kiosk
from tickets.models import PrintJob, PrintJobStatus, Ticket, TicketStatus
from tickets.printing import banner_render, printer_send, reprint_banner_render
from tickets.services import (
    kiosk_token_rotate,
    print_job_run,
    print_jobs_recover,
    print_lease_seconds,
    print_send,
    ticket_call_next,
)

SELECT_CP860 = b"\x1bt\x03"


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


@pytest.fixture
def job(client, kiosk_secret, service, printer):
    session = kiosk_session(service, customer_name="Iñés Souza", language="pt-br")
    assert pay_at_kiosk(client, kiosk_secret, session).status_code == 200
    return PrintJob.objects.select_related("ticket__payment_session").get()


def killed_after_sending(monkeypatch, job: PrintJob) -> None:
    """Run the job's task until the worker "dies" right after the printer took every
    byte, before the result is recorded."""

    def send_then_die(url, data, **kwargs):
        printer_send(url, data, **kwargs)
        raise WorkerKilled

    monkeypatch.setattr(print_send, "printer_send", send_then_die)
    with pytest.raises(WorkerKilled):
        print_job_run(job_id=job.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    assert job.status == PrintJobStatus.SENDING and job.attempts == 1 and job.sent_at


def age(job: PrintJob, seconds: float) -> None:
    PrintJob.objects.filter(pk=job.pk).update(sent_at=job.sent_at - timedelta(seconds=seconds))
    job.refresh_from_db()


def test_the_banner_says_reprint_in_the_tickets_language_with_its_accents():
    english = reprint_banner_render(language="en")
    assert english.startswith(SELECT_CP860) and b" REPRINT " in english
    assert b"\x1dB\x01" in english  # inverted
    assert b"Another copy of this ticket may exist" in english
    for language in ("pt-br", "es"):
        with translation.override(language):
            title = gettext("REPRINT")
        assert f" {title} ".encode("cp860") in reprint_banner_render(language=language)
    # Whatever the catalogues say, accented words reach the paper in the code page.
    for title, note in (
        ("REIMPRESSÃO", "Pode existir outra via desta senha: mesmo número."),
        ("REIMPRESIÓN", "Puede existir otra copia: mismo número, misma posición."),
    ):
        banner = banner_render(title, note)
        assert title.encode("cp860") in banner and note.encode("cp860") in banner


def test_a_job_found_sending_after_its_lease_is_resent_once_marked_reprint(
    job, monkeypatch, settings, loopback_printer, django_capture_on_commit_callbacks
):
    settings.PRINT_RETRY_BASE_SECONDS = 0
    original = bytes(job.data)
    killed_after_sending(monkeypatch, job)
    assert loopback_printer.jobs == [original]  # the paper came out; nobody recorded it

    age(job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        report = print_jobs_recover()
    assert report.requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == PrintJobStatus.QUEUED and job.reprint_marked
    banner = reprint_banner_render(language="pt-br")
    assert bytes(job.data) == banner + original

    ticket = job.ticket
    recovered, interrupted = ticket.events.filter(
        type__in=("print_recovered", "print_interrupted")
    ).order_by("id")
    assert recovered.type == "print_recovered" and recovered.data["was"] == "sending"
    assert interrupted.type == "print_interrupted"
    assert interrupted.data["job"] == job.pk and interrupted.data["attempt"] == 1
    assert interrupted.data["resend"] == "marked_reprint"
    assert "worker stopped" in interrupted.data["error"]
    assert interrupted.data["attempt_started_at"]
    (told,) = Event.objects.filter(type="ticket.print_interrupted")
    assert told.audience == "role:operator"
    assert told.payload == {
        "ticket": ticket.pk,
        "code": "A-001",
        "service": ticket.service.name,
        "service_id": ticket.service_id,
        "status": TicketStatus.PRINTING,
        "desk": "",
        "reference": ticket.payment_session.reference,
        "job": job.pk,
        "attempt": 1,
    }

    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    assert loopback_printer.jobs == [original, banner + original]  # twice, never more
    job.refresh_from_db()
    assert (job.status, job.attempts, job.reprint_marked) == (PrintJobStatus.PRINTED, 2, True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_QUEUE
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    assert len(loopback_printer.jobs) == 2
    assert not Alert.objects.exists()  # a duplicate slip is the operators' business


def test_a_task_that_finds_its_job_sending_leaves_it_alone_until_the_lease_ends(
    job, monkeypatch, settings, loopback_printer, django_capture_on_commit_callbacks
):
    settings.PRINT_RETRY_BASE_SECONDS = 0
    original = bytes(job.data)
    killed_after_sending(monkeypatch, job)

    # Within the lease the attempt may still be going on: no second, unmarked copy.
    assert print_job_run(job_id=job.pk) == PrintJobStatus.SENDING
    assert loopback_printer.jobs == [original]
    job.refresh_from_db()
    assert job.attempts == 1 and not job.reprint_marked

    # After it, the task takes the job back as the sweep would, and a retry prints it marked.
    age(job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_job_run(job_id=job.pk) == PrintJobStatus.QUEUED
    job.refresh_from_db()
    assert job.reprint_marked and job.attempts == 1
    assert list(job.ticket.events.values_list("type", flat=True))[-2:] == [
        "print_recovered",
        "print_interrupted",
    ]
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    assert loopback_printer.jobs == [original, reprint_banner_render(language="pt-br") + original]
    assert Event.objects.filter(type="ticket.print_interrupted").count() == 1


def test_a_printer_that_took_the_bytes_and_never_answered_gets_a_reprint(
    client, kiosk_secret, service, settings, deaf_printer, loopback_printer
):
    settings.PRINT_TIMEOUT_SECONDS = 0.3
    settings.PRINT_RETRY_BASE_SECONDS = 0
    deaf = PrinterFactory(name="Deaf", url=deaf_printer.url)
    pay_at_kiosk(client, kiosk_secret, kiosk_session(service))
    job = PrintJob.objects.get()
    original = bytes(job.data)

    assert print_job_run(job_id=job.pk) == PrintJobStatus.QUEUED
    job.refresh_from_db()
    assert job.reprint_marked and "did not answer" in job.last_error
    assert bytes(job.data) == reprint_banner_render(language="en") + original

    deaf.url = loopback_printer.url
    deaf.save()
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    (printed,) = loopback_printer.jobs
    assert printed.startswith(reprint_banner_render(language="en"))
    assert Event.objects.filter(type="ticket.print_interrupted").count() == 1


def test_a_printer_that_was_never_reached_is_retried_unmarked(
    client, kiosk_secret, service, settings, loopback_printer
):
    settings.PRINT_RETRY_BASE_SECONDS = 0
    off = PrinterFactory(name="Off", url=closed_port_url())
    pay_at_kiosk(client, kiosk_secret, kiosk_session(service))
    job = PrintJob.objects.get()
    original = bytes(job.data)
    assert print_job_run(job_id=job.pk) == PrintJobStatus.QUEUED
    job.refresh_from_db()
    assert not job.reprint_marked and bytes(job.data) == original

    off.url = loopback_printer.url
    off.save()
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    assert loopback_printer.jobs == [original]
    assert not job.ticket.events.filter(type="print_interrupted").exists()
    assert not Event.objects.filter(type="ticket.print_interrupted").exists()


def test_a_half_sent_last_attempt_still_ends_in_print_error_and_alerts(
    job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.PRINT_MAX_ATTEMPTS = 1
    killed_after_sending(monkeypatch, job)
    age(job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert print_jobs_recover().failed == [job.pk]
    job.refresh_from_db()
    assert job.status == PrintJobStatus.FAILED and not job.reprint_marked
    ticket = job.ticket
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PRINT_ERROR
    assert list(ticket.events.values_list("type", flat=True))[-2:] == [
        "print_recovered",
        TicketStatus.PRINT_ERROR,
    ]
    assert Alert.objects.filter(code="ticket.print_error", context__job=job.pk).count() == 1
    assert Event.objects.filter(type="alert.raised", audience="role:operator").count() == 1


def test_the_operator_panel_marks_a_ticket_that_may_have_two_slips(
    client, job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.PRINT_RETRY_BASE_SECONDS = 0
    client.force_login(UserFactory(roles=["operator"]))
    panel = reverse("operator-panel")
    assert "data-reprint" not in client.get(panel).content.decode()

    killed_after_sending(monkeypatch, job)
    age(job, print_lease_seconds() + 1)
    with django_capture_on_commit_callbacks(execute=True):
        print_jobs_recover()
    print_job_run(job_id=job.pk)
    page = client.get(panel).content.decode()
    assert page.count("data-reprint") == 1 and "REPRINT: two slips may exist" in page

    ticket_call_next(operator=UserFactory(roles=["operator"]), desk="2")
    page = client.get(panel).content.decode()
    assert page.count("data-reprint") == 1  # still marked at the desk


def test_the_kiosk_records_the_customers_language_for_the_paper(client, service):
    kiosk = KioskFactory(name="Entrada")
    token = kiosk_token_rotate(kiosk=kiosk)
    url = reverse("kiosk-service", args=[service.pk]) + f"?token={token}"
    answer = client.post(
        url, {"method": "card", "key": "k" * 32, "cpf": ""}, HTTP_ACCEPT_LANGUAGE="es"
    )
    assert answer.status_code == 302
    from payments.models import PaymentSession

    assert PaymentSession.objects.get().params["language"] == "es"
    with pytest.raises(InvalidParams):
        kiosk_session(service, language="xx")


@pytest.mark.django_db(transaction=True)
def test_an_attempt_is_committed_before_the_printer_sees_a_byte(
    kiosk_secret, service, printer, loopback_printer
):
    from django.test import Client

    pay_at_kiosk(Client(), kiosk_secret, kiosk_session(service))
    job = PrintJob.objects.get()
    with pytest.raises(RuntimeError), transaction.atomic():
        print_job_run(job_id=job.pk)
    assert loopback_printer.jobs == []
    assert print_job_run(job_id=job.pk) == PrintJobStatus.PRINTED
    assert Ticket.objects.get().status == TicketStatus.IN_QUEUE
