"""A payment the provider approved but whose webhook never arrived is found and confirmed
by `poll_providers`, through the confirmation path (source "poll")."""

import io
import json
import uuid

import pytest
from django.core.management import call_command

from payments.models import PaymentAudit
from payments.services import payment_session_create
from tests.subscriptions.conftest import *  # noqa: F403 - billing, plans, customer, mp_fake
from tests.subscriptions.conftest import checkout, post_nowpayments
from tests.subscriptions.test_nowpayments import ipn

pytestmark = pytest.mark.django_db


def poll(*args) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("poll_providers", "--older-than", "0", "--json", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def topup(customer):
    return payment_session_create(
        user=customer,
        purpose="wallet_topup",
        provider="mercadopago",
        amount="25.00",
        idempotency_key=uuid.uuid4().hex,
    ).session


def test_lost_mercadopago_webhook_is_repaired_by_polling(customer, mp_fake):
    session = topup(customer)
    mp_fake.act(session.provider_payment_id, "approve", send=False)  # the webhook is lost
    code, report = poll()
    assert code == 0 and report["changed"] == [session.reference]
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilled_at is not None
    assert PaymentAudit.objects.get(session=session, action="completed").source == "poll"
    code, report = poll()  # closed sessions are not polled again
    assert report["checked"] == 0


def test_pending_payment_stays_pending_and_young_ones_wait(customer, mp_fake):
    session = topup(customer)
    code, report = poll()
    assert code == 0 and report["unchanged"] == 1 and report["changed"] == []
    out = io.StringIO()
    call_command("poll_providers", "--json", stdout=out)  # default: only older sessions
    assert json.loads(out.getvalue())["checked"] == 0
    session.refresh_from_db()
    assert session.status == "pending"


def test_provider_down_is_reported_and_changes_nothing(customer, mp_fake):
    session = topup(customer)
    mp_fake.act(session.provider_payment_id, "approve", send=False)
    mp_fake.outage = True
    code, report = poll()
    assert code == 1 and session.reference in report["failed"]
    session.refresh_from_db()
    assert session.status == "pending"


def test_nowpayments_payment_is_polled(client, customer, billing, plans):
    session = checkout(customer, plans["usd"], "nowpayments")
    post_nowpayments(client, ipn(session, "confirming"))  # we learn the payment id
    session.refresh_from_db()
    payment_id = session.provider_payment_id
    billing.payments[payment_id] = ipn(session, "finished")  # the `finished` IPN is lost
    code, report = poll()
    assert code == 0 and report["changed"] == [session.reference], report
    session.refresh_from_db()
    assert session.status == "completed" and session.fulfilled_at is not None
