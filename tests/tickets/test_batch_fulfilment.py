"""A batch of paid tickets is fulfilled at once, and one that cannot be fulfilled is
isolated: the others get their tickets, it keeps its payment with the error."""

import pytest
from django_tasks_db.models import DBTaskResult

from payments.models import PaymentAudit, WebhookDelivery
from payments.services.deliveries import deliveries_run
from tests.factories import ServiceFactory
from tests.tickets.conftest import kiosk_session
from tests.tickets.test_webhook_cost import _post
from tickets.models import PrintJob, Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_batch_of_tickets_is_numbered_printed_and_enqueued_together(
    client, kiosk_secret, service, printer
):
    other = ServiceFactory(name="Segunda via", prefix="B")
    sessions = [kiosk_session(service if i % 2 else other) for i in range(6)]
    for session in sessions:
        assert _post(client, kiosk_secret, session).json()["status"] == "accepted"

    report = deliveries_run(limit=10)

    assert report.outcomes == {"processed": 6}
    for each in (service, other):
        tickets = Ticket.objects.filter(service=each).order_by("number")
        assert [t.number for t in tickets] == [1, 2, 3]
        # numbered in the order the notifications arrived
        paid = [s.pk for s in sessions if s.params["service"] == each.pk]
        assert [t.payment_session_id for t in tickets] == paid
    jobs = PrintJob.objects.filter(ticket__payment_session__in=sessions)
    assert jobs.count() == 6 and {job.printer_id for job in jobs} == {printer.pk}
    # one task per job, enqueued together after the commit, as `enqueue` would
    queued = DBTaskResult.objects.filter(task_path="tickets.tasks.print_job_send")
    assert sorted(row.args_kwargs["kwargs"]["job_id"] for row in queued) == sorted(
        job.pk for job in jobs
    )
    assert all(row.status == "READY" for row in queued)
    fulfilled = PaymentAudit.objects.filter(session__in=sessions, action="fulfilled")
    assert fulfilled.count() == 6


def test_one_ticket_that_cannot_be_made_does_not_hold_back_the_batch(
    client, kiosk_secret, service, printer
):
    gone = ServiceFactory(name="Fechado", prefix="F")
    sessions = [kiosk_session(service), kiosk_session(gone), kiosk_session(service)]
    for session in sessions:
        assert _post(client, kiosk_secret, session).json()["status"] == "accepted"
    gone.delete()  # its session still names it: fulfilling that one fails

    report = deliveries_run(limit=10)

    assert report.outcomes == {"processed": 3}
    assert not WebhookDelivery.objects.exclude(status="processed").exists()
    good = [sessions[0], sessions[2]]
    tickets = Ticket.objects.filter(payment_session__in=good).order_by("number")
    assert [(t.payment_session_id, t.number) for t in tickets] == [
        (sessions[0].pk, 1),
        (sessions[2].pk, 2),  # the failed batch attempt gave its numbers back
    ]
    failed = sessions[1]
    failed.refresh_from_db()
    assert failed.status == "completed" and failed.fulfilled_at is None
    assert failed.fulfilment_error.startswith("DoesNotExist")
    assert not Ticket.objects.filter(payment_session=failed).exists()
    assert PaymentAudit.objects.filter(session=failed, action="fulfilment_failed").count() == 1
    for session in good:
        session.refresh_from_db()
        assert session.fulfilled_at is not None and session.fulfilment_error == ""
