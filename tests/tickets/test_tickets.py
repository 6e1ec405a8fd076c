"""Paid kiosk sessions become tickets, exactly once; operators move them along."""

import pytest
from django.utils import timezone

from notifications.models import Event
from payments.errors import InvalidParams
from payments.models import PaymentSession, PaymentStatus
from tests.factories import UserFactory
from tests.tickets.conftest import kiosk_session, pay_at_kiosk
from tickets.cpf import cpf_mask, cpf_valid
from tickets.errors import TicketError
from tickets.models import Ticket, TicketEvent, TicketStatus
from tickets.services import (
    ticket_call_next,
    ticket_complete,
    ticket_no_show,
    ticket_recall,
    ticket_start,
)

pytestmark = pytest.mark.django_db


def test_paid_kiosk_session_becomes_one_ticket_and_tells_everyone(
    client, kiosk_secret, service, printer
):
    session = kiosk_session(service, customer_name="Ana")
    assert pay_at_kiosk(client, kiosk_secret, session, msg_id="msg_1").status_code == 200
    for _ in range(3):  # the terminal retries the same message
        assert pay_at_kiosk(client, kiosk_secret, session, msg_id="msg_1").status_code == 200
    assert pay_at_kiosk(client, kiosk_secret, session).status_code == 200  # another message
    ticket = Ticket.objects.get()
    assert (ticket.code, ticket.status, ticket.customer_name) == ("A-001", "paid", "Ana")
    assert ticket.day == timezone.localdate()
    created = Event.objects.filter(type="ticket.created")
    assert set(created.values_list("audience", flat=True)) == {
        f"payment:{session.reference}",
        "role:operator",
    }
    assert created.first().payload["code"] == "A-001"
    assert ticket.print_jobs.count() == 1


def test_original_bug_a_paid_kiosk_session_always_has_exactly_one_ticket(
    client, kiosk_secret, service, printer
):
    sessions = [kiosk_session(service) for _ in range(4)]
    for session in sessions:
        pay_at_kiosk(client, kiosk_secret, session)
        pay_at_kiosk(client, kiosk_secret, session)
    paid = PaymentSession.objects.filter(purpose="ticket", status=PaymentStatus.COMPLETED)
    assert paid.count() == 4
    for session in paid:
        assert Ticket.objects.filter(payment_session=session).count() == 1
    assert sorted(Ticket.objects.values_list("number", flat=True)) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "cpf, valid",
    [
        ("529.982.247-25", True),
        ("52998224725", True),
        ("529.982.247-24", False),
        ("111.111.111-11", False),
        ("123", False),
        ("", False),
    ],
)
def test_cpf_check_digits(cpf, valid):
    assert cpf_valid(cpf) is valid


def test_cpf_is_kept_only_masked(service):
    session = kiosk_session(service, cpf="529.982.247-25")
    assert session.params["cpf"] == "***.***.***-25"
    assert "52998224725" not in str(session.params)
    assert cpf_mask("52998224725") == "***.***.***-25"
    with pytest.raises(InvalidParams, match="CPF"):
        kiosk_session(service, cpf="529.982.247-24")


def test_unknown_or_inactive_service_is_refused(service):
    service.active = False
    service.save()
    with pytest.raises(InvalidParams):
        kiosk_session(service)


def test_operator_calls_fifo_and_moves_tickets_along(client, kiosk_secret, service, printer):
    from tickets.services import print_job_run

    sessions = [kiosk_session(service) for _ in range(3)]
    for session in sessions:
        pay_at_kiosk(client, kiosk_secret, session)
    for job in Ticket.objects.get(number=2).print_jobs.all():
        print_job_run(job_id=job.pk)
    operator = UserFactory(roles=["operator"])
    with pytest.raises(TicketError):
        ticket_call_next(operator=operator, desk="")
    first = ticket_call_next(operator=operator, desk="3")
    # Ticket 1 is still printing (PAID): the first printed one in payment order is called.
    assert first.number == 2 and first.status == TicketStatus.CALLED and first.desk == "3"
    called = Event.objects.filter(type="ticket.called")
    assert {"display:lobby", "role:operator", f"payment:{first.payment_session.reference}"} <= (
        set(called.values_list("audience", flat=True))
    )
    ticket_recall(ticket_id=first.pk, operator=operator)
    ticket_start(ticket_id=first.pk, operator=operator)
    ticket_complete(ticket_id=first.pk, operator=operator)
    with pytest.raises(TicketError):
        ticket_start(ticket_id=first.pk, operator=operator)  # completed is final
    assert ticket_call_next(operator=operator, desk="3") is None
    steps = list(TicketEvent.objects.filter(ticket=first).values_list("type", flat=True))
    assert steps == [
        "created",
        "printing",
        "in_queue",
        "called",
        "called",
        "in_progress",
        "completed",
    ]


def test_no_show_and_print_error_tickets_can_be_called(client, kiosk_secret, service, printer):
    session = kiosk_session(service)
    pay_at_kiosk(client, kiosk_secret, session)
    ticket = Ticket.objects.get()
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.PRINT_ERROR)
    operator = UserFactory(roles=["operator"])
    called = ticket_call_next(operator=operator, desk="1")
    assert called.pk == ticket.pk
    ticket_no_show(ticket_id=ticket.pk, operator=operator)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.NO_SHOW


def test_operator_panel_permissions(client, service):
    client.force_login(UserFactory(roles=["waiter"]))
    assert client.get("/operator/").status_code == 403
    assert client.post("/operator/call/").status_code == 403
    client.force_login(UserFactory(roles=["operator"]))
    assert client.get("/operator/").status_code == 200


def test_integration_status_numbers_and_thresholds(client, kiosk_secret, service, printer):
    from tickets.services import print_job_run

    sessions = [kiosk_session(service) for _ in range(5)]
    for session in sessions[:4]:
        pay_at_kiosk(client, kiosk_secret, session)
    for job_ticket in Ticket.objects.all()[:2]:
        for job in job_ticket.print_jobs.all():
            print_job_run(job_id=job.pk)
    # A paid session whose ticket is missing (the original bug, forced).
    lost = sessions[3]
    from tickets.models import PrintJob, TicketEvent

    ticket = Ticket.objects.get(payment_session__reference=lost.reference)
    PrintJob.objects.filter(ticket=ticket).delete()
    TicketEvent.objects.filter(ticket=ticket).delete()
    ticket.delete()

    client.force_login(UserFactory(roles=["staff"]))
    body = client.get("/api/integration/status/").json()
    assert body["totals"] == {
        "payment_sessions": 5,
        "paid": 4,
        "tickets": 3,
        "conversion_percent": 75.0,
    }
    assert body["status"] == "critical"
    assert [s["reference"] for s in body["paid_without_ticket"]] == [lost.reference]
    assert body["payment_to_ticket_seconds"]["count"] == 3
    assert body["payment_to_printed_seconds"]["count"] == 2
    assert body["payment_to_ticket_seconds"]["p95"] >= 0
    page = client.get("/integration/").content.decode()
    assert "75.0 %" in page and lost.reference in page
    client.force_login(UserFactory(roles=["operator"]))
    assert client.get("/api/integration/status/").status_code == 403


@pytest.mark.parametrize(
    "paid, tickets, status",
    [(100, 95, "healthy"), (100, 94, "warning"), (100, 80, "warning"), (100, 79, "critical")],
)
def test_health_thresholds(paid, tickets, status):
    from tickets.selectors import health_status

    assert health_status(100.0 * tickets / paid) == status


def test_admin_reprint_makes_a_new_job(client, kiosk_secret, service, printer):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    pay_at_kiosk(client, kiosk_secret, kiosk_session(service))
    ticket = Ticket.objects.get()
    # Already called to a desk: still unfinished, so it may be reprinted.
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.CALLED, desk="1")
    staff = UserFactory(roles=["staff"], is_staff=True, is_superuser=True)
    client.force_login(staff)
    form = {"action": "reprint", ACTION_CHECKBOX_NAME: [ticket.pk]}
    # The action first asks for a reason; nothing is printed before it is given.
    asked = client.post("/admin/tickets/ticket/", form)
    assert asked.status_code == 200 and b'name="reason"' in asked.content
    assert ticket.print_jobs.count() == 1
    client.post("/admin/tickets/ticket/", {**form, "apply": "1", "reason": "paper jam"})
    assert ticket.print_jobs.count() == 2
    assert ticket.print_jobs.order_by("-id").first().requested_by == staff
    event = TicketEvent.objects.filter(ticket=ticket, type="reprint").get()
    assert (event.actor, event.data) == (staff, {"reason": "paper jam"})
    for url in [
        "/admin/tickets/ticket/",
        f"/admin/tickets/ticket/{ticket.pk}/change/",
        "/admin/tickets/printer/",
        "/admin/tickets/printjob/",
        "/admin/tickets/kiosk/",
        "/admin/tickets/service/",
        "/admin/tickets/deskassignment/",
    ]:
        assert client.get(url).status_code == 200, url


def test_ticket_sessions_need_a_kiosk_page(client, service):
    response = client.post(
        "/api/payment-sessions/",
        data={"purpose": "ticket", "provider": "kiosk", "params": {"service": service.pk}},
        content_type="application/json",
        headers={"Idempotency-Key": "no-kiosk"},
    )
    assert response.status_code == 400
    assert not PaymentSession.objects.exists()


def test_recall_only_calls_again_a_called_ticket(client, kiosk_secret, service, printer):
    pay_at_kiosk(client, kiosk_secret, kiosk_session(service))
    ticket = Ticket.objects.get()
    with pytest.raises(TicketError):
        ticket_recall(ticket_id=ticket.pk, operator=UserFactory(roles=["operator"]))


def test_operator_call_with_a_bad_service_is_not_a_500(client, service):
    client.force_login(UserFactory(roles=["operator"]))
    response = client.post("/operator/call/", {"service": "x"})
    assert response.status_code == 302
