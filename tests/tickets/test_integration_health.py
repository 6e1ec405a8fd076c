"""The kiosk integration status rates time to ticket and printing against the kiosk
team's thresholds, lets both move the overall health, and lists the paid sessions with
no ticket with what staff need to fix them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import PaymentAudit, PaymentSession
from tests.factories import PrinterFactory, UserFactory
from tests.tickets.conftest import closed_port_url, paid_ticket
from tickets.models import PrintJob, Ticket, TicketEvent, TicketStatus
from tickets.selectors import integration_health, latency_rating
from tickets.services import print_job_run
from tickets.services.desks import ticket_reprint_request

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "seconds, rating",
    [
        (None, "no_data"),
        (0.2, "ideal"),
        (1.99, "ideal"),
        (2.0, "acceptable"),
        (4.99, "acceptable"),
        (5.0, "slow"),
        (10.0, "slow"),
        (10.01, "problem"),
    ],
)
def test_latency_thresholds(seconds, rating):
    assert latency_rating(seconds) == rating


def paid_seconds_before(ticket: Ticket, seconds: float) -> None:
    """As if the payment had completed `seconds` before the ticket was made."""
    PaymentSession.objects.filter(pk=ticket.payment_session_id).update(
        completed_at=ticket.created_at - timedelta(seconds=seconds)
    )


@pytest.mark.parametrize(
    "seconds, rating, status", [(3, "acceptable", "healthy"), (12, "problem", "critical")]
)
def test_time_to_ticket_is_rated_and_moves_the_health(
    client, service, dummy_printer, seconds, rating, status
):
    for _ in range(2):
        paid_seconds_before(paid_ticket(service), seconds)
    health = integration_health()
    assert health["totals"]["conversion_percent"] == 100.0
    assert health["conversion_status"] == "healthy"
    assert health["payment_to_ticket_seconds"]["rating"] == rating
    assert health["payment_to_printed_seconds"]["rating"] == rating
    assert health["status"] == status
    assert bool(health["reasons"]) is (status != "healthy")

    client.force_login(UserFactory(roles=["staff"]))
    body = client.get("/api/integration/status/").json()
    assert (body["status"], body["payment_to_ticket_seconds"]["rating"]) == (status, rating)
    page = client.get("/integration/").content.decode()
    assert f'id="ticket-rating" data-rating="{rating}"' in page
    assert f'id="health-status" data-status="{status}"' in page
    if status == "critical":
        assert "Payment → ticket takes 12.0 s (p95): problem." in page


def test_a_printer_error_moves_the_health_at_once_and_back(client, service, settings):
    settings.PRINT_MAX_ATTEMPTS = 2
    printer = PrinterFactory(name="Balcão", url=closed_port_url())
    ticket = paid_ticket(service, printed=False)
    job = ticket.print_jobs.get()
    assert integration_health()["status"] == "healthy"

    # The first attempt fails: retried, but the status says so at once.
    print_job_run(job_id=job.pk)
    health = integration_health()
    assert health["printing"]["rating"] == "degraded"
    assert health["printing"]["printers_failing"] == ["Balcão"]
    assert health["printing"]["jobs_retrying"] == 1
    assert health["status"] == "warning"

    # The last attempt fails: a customer has no paper.
    print_job_run(job_id=job.pk)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PRINT_ERROR
    health = integration_health()
    assert (health["printing"]["rating"], health["printing"]["print_errors"]) == ("problem", 1)
    assert health["status"] == "critical"
    assert "1 ticket could not be printed." in health["reasons"]
    client.force_login(UserFactory(roles=["staff"]))
    page = client.get("/integration/").content.decode()
    assert 'id="printing-rating" data-rating="problem"' in page

    # The printer is mended and the ticket reprinted: healthy again.
    printer.url = "dummy:"
    printer.save(update_fields=["url"])
    reprint = ticket_reprint_request(
        ticket_id=ticket.pk, actor=UserFactory(roles=["staff"]), reason="printer mended"
    )
    print_job_run(job_id=reprint.pk)
    health = integration_health()
    assert (health["printing"]["rating"], health["status"]) == ("ok", "healthy")


def test_a_ticket_waiting_for_its_paper_too_long_is_a_warning(service, dummy_printer):
    ticket = paid_ticket(service, printed=False)
    assert integration_health()["printing"]["waiting_for_paper"] == 0
    Ticket.objects.filter(pk=ticket.pk).update(paid_at=timezone.now() - timedelta(seconds=11))
    health = integration_health()
    assert health["printing"]["waiting_for_paper"] == 1
    assert health["status"] == "warning"


def lose_ticket(ticket: Ticket, *, error: str = "", provider_id: str = "trx-778") -> PaymentSession:
    """The original bug, forced: a paid session whose ticket does not exist."""
    PrintJob.objects.filter(ticket=ticket).delete()
    TicketEvent.objects.filter(ticket=ticket).delete()
    ticket.delete()
    PaymentSession.objects.filter(pk=ticket.payment_session_id).update(
        provider_payment_id=provider_id, fulfilment_error=error
    )
    return PaymentSession.objects.get(pk=ticket.payment_session_id)


def test_the_issues_list_shows_what_staff_need(client, service, dummy_printer):
    kept = paid_ticket(service)
    lost = lose_ticket(
        paid_ticket(service, customer_name="Iñés Conceição Souza"), error="IntegrityError"
    )
    # Paid three days ago, its fulfilment never succeeded: still listed.
    old = lose_ticket(paid_ticket(service), provider_id="trx-001")
    PaymentSession.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=3),
        completed_at=timezone.now() - timedelta(days=3),
        fulfilled_at=None,
    )
    client.force_login(UserFactory(roles=["staff"]))
    body = client.get("/api/integration/status/").json()
    assert body["paid_without_ticket_total"] == 2
    older, issue = body["paid_without_ticket"]
    assert older["reference"] == old.reference
    assert issue == {
        "session": lost.pk,
        "reference": lost.reference,
        "provider": "kiosk",
        "provider_transaction_id": "trx-778",
        "customer_name": "Iñés S.",
        "amount": "5.00",
        "currency": "BRL",
        "paid_at": lost.completed_at.isoformat(),
        "error": "IntegrityError",
        "held": "",
        "completed_at": lost.completed_at.isoformat(),
        "fulfilment_error": "IntegrityError",
    }
    page = client.get("/integration/").content.decode()
    row = page[page.index(f'<tr data-reference="{lost.reference}">') :]
    row = row[: row.index("</tr>")]
    for shown in ("trx-778", "Iñés S.", "R$5.00", "IntegrityError", "Make the ticket"):
        assert shown in row, shown
    assert "Conceição" not in page
    assert f"/admin/payments/paymentsession/{lost.pk}/change/" in row
    assert kept.payment_session.reference not in page


def test_the_fix_button_makes_the_missing_ticket_with_a_reason(client, service, dummy_printer):
    lost = lose_ticket(paid_ticket(service))
    staff = UserFactory(roles=["staff"])
    client.force_login(staff)

    response = client.post(
        "/integration/fix/", {"reference": lost.reference, "reason": " "}, follow=True
    )
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert not Ticket.objects.filter(payment_session=lost).exists()

    response = client.post(
        "/integration/fix/",
        {"reference": lost.reference, "reason": "ticket lost in the outage", "back": "operations"},
    )
    assert response["Location"] == "/operations/"
    ticket = Ticket.objects.get(payment_session=lost)
    assert ticket.print_jobs.count() == 1
    audit = PaymentAudit.objects.filter(session=lost, action="fulfilled").order_by("-id").first()
    assert (audit.actor, audit.reason) == (staff, "ticket lost in the outage")
    messages = [str(m) for m in client.get("/integration/").context["messages"]]
    assert messages == [f"{ticket.code} made for {lost.reference} and sent to the printer."]
    assert client.get("/api/integration/status/").json()["paid_without_ticket"] == []


def test_a_held_payment_is_fixed_only_by_accepting_it(client, service, dummy_printer):
    lost = lose_ticket(paid_ticket(service))
    PaymentSession.objects.filter(pk=lost.pk).update(amount_mismatch=True)
    client.force_login(UserFactory(roles=["staff"]))
    [issue] = client.get("/api/integration/status/").json()["paid_without_ticket"]
    assert issue["held"] == "amount_mismatch"
    assert "Accept and make the ticket" in client.get("/integration/").content.decode()

    form = {"reference": lost.reference, "reason": "customer paid the difference"}
    client.post("/integration/fix/", form)
    assert not Ticket.objects.filter(payment_session=lost).exists()
    client.post("/integration/fix/", {**form, "accept": "1"})
    assert Ticket.objects.filter(payment_session=lost).exists()
    assert PaymentAudit.objects.filter(session=lost, action="review_accepted").exists()


def test_the_fix_is_for_staff_only(client, service, dummy_printer):
    lost = lose_ticket(paid_ticket(service))
    client.force_login(UserFactory(roles=["operator"]))
    response = client.post("/integration/fix/", {"reference": lost.reference, "reason": "x"})
    assert response.status_code == 403
    assert not Ticket.objects.filter(payment_session=lost).exists()
