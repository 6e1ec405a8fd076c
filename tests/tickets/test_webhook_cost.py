"""What one kiosk notification costs in SQL: a guard against the confirmation path
growing round trips (docs/performance.md counts them; `make bench` measures the time)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.tickets.conftest import kiosk_session, pay_at_kiosk
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_a_paid_ticket_costs_a_bounded_number_of_statements(client, kiosk_secret, service, printer):
    warm = kiosk_session(service)
    assert pay_at_kiosk(client, kiosk_secret, warm).status_code == 200
    session = kiosk_session(service)
    with CaptureQueriesContext(connection) as queries:
        response = pay_at_kiosk(client, kiosk_secret, session)
    assert response.status_code == 200, response.content
    assert Ticket.objects.filter(payment_session=session).count() == 1
    statements = [q["sql"] for q in queries.captured_queries]
    # The delivery stored (its own transaction), the event-id check, then one transaction:
    # session lock, "payment id taken?", audit, savepoint around fulfilment (ticket exists?,
    # service, number, ticket, ticket event, events, printer, print job), audit, session,
    # event; the delivery's outcome. In tests, transactions show as savepoints.
    assert len(statements) <= 23, "\n".join(s[:120] for s in statements)
    numbering = [s for s in statements if "tickets_ticketcounter" in s]
    assert len(numbering) == 1, numbering
    assert sum('INSERT INTO "notifications_event"' in s for s in statements) == 2
