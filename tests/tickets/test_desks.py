"""Operators at desks: the desk is remembered per operator, a desk has one ticket at a
time (calling the next completes the last), every button says what it did, and any
unfinished ticket can be reprinted with a reason."""

import threading

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.test import Client

from notifications.models import Event
from notifications.tokens import audience_token_create
from tests.factories import UserFactory
from tests.tickets.conftest import messages_of, paid_ticket
from tickets.errors import TicketError
from tickets.models import DeskAssignment, Ticket, TicketEvent, TicketStatus
from tickets.services import ticket_start
from tickets.services.desks import desk_call_next, operator_desk

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    return UserFactory(roles=["operator"])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def at_desk(desk: str) -> list[str]:
    return sorted(
        t.code
        for t in Ticket.objects.filter(
            desk=desk, status__in=(TicketStatus.CALLED, TicketStatus.IN_PROGRESS)
        ).select_related("service")
    )


def test_an_operators_desk_is_kept_across_logins(operator, service, dummy_printer):
    ticket = paid_ticket(service)
    first = logged_in(operator)
    response = first.post("/operator/desk/", {"desk": " 4 "}, follow=True)
    assert ("success", "You are at desk 4.") in messages_of(response)
    first.post("/operator/desk/", {"desk": "4"}, follow=True)  # the same again: no new row

    # A new login (another browser, the next morning) starts at desk 4 and can call.
    again = logged_in(operator)
    page = again.get("/operator/")
    assert page.context["desk"] == "4"
    assert 'id="desk-missing"' not in page.content.decode()
    response = again.post("/operator/call/", follow=True)
    assert ("success", f"{ticket.code} called to desk 4.") in messages_of(response)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.desk, ticket.operator) == (TicketStatus.CALLED, "4", operator)

    again.post("/operator/desk/", {"desk": "5"})
    assert list(
        DeskAssignment.objects.filter(operator=operator)
        .order_by("id")
        .values_list("previous_desk", "desk")
    ) == [("", "4"), ("4", "5")]
    assert operator_desk(operator=operator) == "5"
    assert operator_desk(operator=UserFactory(roles=["operator"])) == ""


def test_a_new_operator_is_asked_for_a_desk_before_calling(operator, service, dummy_printer):
    ticket = paid_ticket(service)
    client = logged_in(operator)
    page = client.get("/operator/").content.decode()
    assert 'id="desk-missing"' in page
    assert 'id="call-next" disabled' in page
    response = client.post("/operator/call/", follow=True)
    assert ("error", "Set your desk number first.") in messages_of(response)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_QUEUE


@pytest.mark.parametrize("desk", ["", "   ", "x" * 21, "a\x00b", "2\n3"])
def test_a_bad_desk_is_refused_and_the_desk_stays(operator, desk):
    client = logged_in(operator)
    client.post("/operator/desk/", {"desk": "2"}, follow=True)
    response = client.post("/operator/desk/", {"desk": desk}, follow=True)
    [(level, _text)] = messages_of(response)
    assert level == "error"
    assert DeskAssignment.objects.filter(operator=operator).count() == 1
    assert operator_desk(operator=operator) == "2"


def test_calling_the_next_completes_the_desks_current_ticket(operator, service, dummy_printer):
    first, second, third = (paid_ticket(service) for _ in range(3))
    assert desk_call_next(operator=operator, desk="3").pk == first.pk
    assert at_desk("3") == [first.code]

    # Called but never started: calling the next completes it.
    assert desk_call_next(operator=operator, desk="3").pk == second.pk
    assert at_desk("3") == [second.code]
    first.refresh_from_db()
    assert first.status == TicketStatus.COMPLETED and first.finished_at
    done = TicketEvent.objects.filter(ticket=first).order_by("-id").first()
    assert (done.type, done.from_status, done.actor, done.data) == (
        "completed",
        "called",
        operator,
        {"finished_by": "call_next"},
    )
    assert Event.objects.filter(
        type="ticket.completed", audience="role:operator", payload__ticket=first.pk
    ).exists()

    # Being served: calling the next completes it too. Another desk is not touched.
    ticket_start(ticket_id=second.pk, operator=operator)
    fourth = paid_ticket(service)
    assert desk_call_next(operator=operator, desk="4").pk == third.pk
    assert desk_call_next(operator=operator, desk="3").pk == fourth.pk
    second.refresh_from_db()
    assert second.status == TicketStatus.COMPLETED
    assert (at_desk("3"), at_desk("4")) == ([fourth.code], [third.code])

    # Nobody waits: the desk's ticket is still completed, and the desk is free.
    assert desk_call_next(operator=operator, desk="3") is None
    assert at_desk("3") == []


def test_the_database_refuses_a_second_ticket_at_a_desk(operator, service, dummy_printer):
    first, second = paid_ticket(service), paid_ticket(service)
    desk_call_next(operator=operator, desk="3")
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.filter(pk=second.pk).update(status=TicketStatus.CALLED, desk="3")
    # At another desk, or with no desk, it may.
    Ticket.objects.filter(pk=second.pk).update(status=TicketStatus.CALLED, desk="9")
    assert first.pk != second.pk


@pytest.mark.django_db(transaction=True)
def test_two_calls_to_one_desk_at_once_leave_one_ticket_there(service, dummy_printer):
    operators = [UserFactory(roles=["operator"]) for _ in range(2)]
    for _ in range(3):
        paid_ticket(service)
    barrier = threading.Barrier(2)
    outcomes = []

    def call(operator):
        try:
            barrier.wait(timeout=5)
            ticket = desk_call_next(operator=operator, desk="7")
            outcomes.append(ticket.code if ticket else None)
        except TicketError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(op,)) for op in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(outcomes) == 2 and None not in outcomes
    assert len(at_desk("7")) == 1
    # Either both calls went through one after the other (the first ticket completed),
    # or the second was refused as "desk busy" with nothing changed.
    completed = Ticket.objects.filter(status=TicketStatus.COMPLETED).count()
    assert ("desk_busy" in outcomes and completed == 0) or completed == 1


def test_the_board_shows_one_number_per_desk(operator, service, dummy_printer):
    tickets = [paid_ticket(service) for _ in range(3)]
    desk_call_next(operator=operator, desk="3")
    desk_call_next(operator=operator, desk="4")
    desk_call_next(operator=operator, desk="3")  # completes tickets[0]
    token = audience_token_create(audiences=[f"display:{settings.TICKET_DISPLAY}"])
    board = Client().get("/display/list/", {"token": token})
    shown = [(t.code, t.desk) for t in board.context["called"]]
    assert shown == [(tickets[2].code, "3"), (tickets[1].code, "4")]


@pytest.mark.parametrize("status", ["in_queue", "print_error", "called", "in_progress"])
def test_any_unfinished_ticket_can_be_reprinted_with_a_reason(
    operator, service, dummy_printer, status
):
    ticket = paid_ticket(service)
    Ticket.objects.filter(pk=ticket.pk).update(status=status, desk="3")
    client = logged_in(operator)
    url = f"/operator/ticket/{ticket.pk}/reprint/"

    response = client.post(url, {"reason": "  "}, follow=True)
    assert ("error", "Say why the ticket is printed again.") in messages_of(response)
    assert ticket.print_jobs.count() == 1

    response = client.post(url, {"reason": "Customer lost the ticket"}, follow=True)
    assert ("success", f"{ticket.code} sent to the printer again.") in messages_of(response)
    assert ticket.print_jobs.count() == 2
    assert ticket.print_jobs.order_by("-id").first().requested_by == operator
    event = TicketEvent.objects.filter(ticket=ticket, type="reprint").get()
    assert (event.actor, event.data, event.from_status) == (
        operator,
        {"reason": "Customer lost the ticket"},
        status,
    )
    ticket.refresh_from_db()
    assert ticket.status == status


@pytest.mark.parametrize("status", ["completed", "no_show", "cancelled"])
def test_a_finished_ticket_is_not_reprinted(operator, service, dummy_printer, status):
    ticket = paid_ticket(service)
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    response = logged_in(operator).post(
        f"/operator/ticket/{ticket.pk}/reprint/", {"reason": "again"}, follow=True
    )
    [(level, _text)] = messages_of(response)
    assert level == "error"
    assert ticket.print_jobs.count() == 1
    assert not TicketEvent.objects.filter(ticket=ticket, type="reprint").exists()


def test_every_operator_button_says_what_it_did(operator, service, dummy_printer):
    ticket, other = paid_ticket(service), paid_ticket(service)
    client = logged_in(operator)
    client.post("/operator/desk/", {"desk": "3"}, follow=True)

    def press(url, **data):
        return messages_of(client.post(url, data, follow=True))

    code = ticket.code
    assert press("/operator/call/") == [("success", f"{code} called to desk 3.")]
    base = f"/operator/ticket/{ticket.pk}"
    assert press(f"{base}/recall/") == [("success", f"{code} called again.")]
    assert press(f"{base}/start/") == [("success", f"{code}: service started.")]
    assert press(f"{base}/complete/") == [("success", f"{code} completed.")]
    assert press("/operator/call/") == [("success", f"{other.code} called to desk 3.")]
    assert press(f"/operator/ticket/{other.pk}/no_show/") == [
        ("success", f"{other.code} marked as no-show.")
    ]
    assert press("/operator/call/") == [("info", "Nobody is waiting.")]
    # A refused step says why.
    [(level, _text)] = press(f"{base}/start/")
    assert level == "error"
