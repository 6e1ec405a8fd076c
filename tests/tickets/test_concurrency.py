"""Numbering under concurrent payments, on PostgreSQL."""

import random

import pytest
from django.test import Client

from payments.providers.kiosk import kiosk_notification
from tests.payments.conftest import post_kiosk
from tests.payments.test_concurrency import run_in_threads
from tests.tickets.conftest import kiosk_session
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_concurrent_confirmations_number_one_to_fifty(kiosk_secret, service):
    sessions = [kiosk_session(service) for _ in range(50)]
    # Each notification is delivered twice (the terminal retries), in random order.
    deliveries = []
    for session in sessions:
        headers, body = kiosk_notification(
            secret=kiosk_secret,
            reference=session.reference,
            amount=str(session.amount),
            currency="BRL",
        )
        deliveries += [(headers, body), (headers, body)]
    random.shuffle(deliveries)
    pending = list(deliveries)

    def deliver():
        client, codes = Client(), []
        while pending:
            try:
                headers, body = pending.pop()
            except IndexError:
                break
            codes.append(post_kiosk(client, headers, body).status_code)
        return codes

    results = run_in_threads(10, deliver)
    codes = [code for batch in results for code in batch]
    assert len(codes) == 100 and set(codes) == {200}
    numbers = sorted(Ticket.objects.values_list("number", flat=True))
    assert numbers == list(range(1, 51))
    assert Ticket.objects.values("payment_session").distinct().count() == 50
