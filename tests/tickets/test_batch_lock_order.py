"""Two workers' batches of ticket payments over the same services lock the services'
ticket counters in one order, so they never deadlock: every payment gets its ticket.

Each batch lists the two services in the opposite order; each worker waits for the other
right after taking its first number (a barrier), which, were the counters locked in the
batches' own order, makes PostgreSQL kill one batch as a deadlock every time."""

import contextlib
import threading

import pytest
from django.db import connection

from payments.models import AuditSource, PaymentSession
from payments.providers import Notification, PaymentState
from payments.services.confirmation import Applied, Evidence, notifications_apply
from tests.factories import ServiceFactory
from tests.tickets.conftest import kiosk_session
from tickets.models import Ticket
from tickets.services import purpose as ticket_purpose

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _approved(session) -> Applied:
    return Applied(
        Notification(
            reference=session.reference,
            provider_payment_id=f"tx_{session.pk}",
            state=PaymentState.APPROVED,
            amount=session.amount,
            currency=session.currency,
        ),
        Evidence(source=AuditSource.WEBHOOK),
    )


def test_two_batches_over_the_same_services_never_deadlock(monkeypatch):
    first = ServiceFactory(name="Primeira via", prefix="A")
    second = ServiceFactory(name="Segunda via", prefix="B")
    x = [kiosk_session(first), kiosk_session(second)]
    y = [kiosk_session(second), kiosk_session(first)]
    barrier = threading.Barrier(2)
    real_take = ticket_purpose._numbers_take
    taken = threading.local()

    def numbers_take(service_id, day, count):
        numbers = real_take(service_id, day, count)
        if not getattr(taken, "once", False):
            taken.once = True
            # Both batches hold their first counter here, if they can both get one; a
            # broken barrier means the other batch waits on our counter: the order held.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=3)
        return numbers

    monkeypatch.setattr(ticket_purpose, "_numbers_take", numbers_take)
    errors = []

    def worker(batch):
        try:
            notifications_apply([_approved(session) for session in batch])
        except Exception as exc:  # a deadlock would surface here or as a failed fulfilment
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in (x, y)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    sessions = PaymentSession.objects.filter(pk__in=[s.pk for s in x + y])
    assert {s.status for s in sessions} == {"completed"}
    assert all(s.fulfilled_at and not s.fulfilment_error for s in sessions)
    assert Ticket.objects.filter(payment_session__in=sessions).count() == 4
    for service in (first, second):
        numbers = Ticket.objects.filter(service=service).values_list("number", flat=True)
        assert sorted(numbers) == [1, 2]
