"""The monitor: a gap of every kind is found by `check` (exit 1), repaired exactly once by
`--repair` through the payments core, and `check` then exits 0."""

import io
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command

from payments.models import AuditSource, PaymentAudit, PaymentSession
from payments.registry import purpose_get
from payments.services import payment_session_create
from payments.services.confirmation import Evidence, payment_confirm
from tests.factories import MachineFactory, ServiceFactory, UserFactory
from tests.orders.conftest import (
    make_order,
    png_bytes,
    private_media,  # noqa: F401 - a fixture
    upload,
)
from tests.subscriptions.conftest import *  # noqa: F403 - billing, plans, customer, mp_fake
from tests.subscriptions.conftest import checkout
from tests.tickets.conftest import kiosk_session

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("monitor_payments", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue()


def confirm(session):
    return payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=session.amount,
        currency=session.currency,
        provider_payment_id=session.provider_payment_id or f"pp-{session.pk}",
    )


@pytest.fixture
def broken(monkeypatch):
    """Make a purpose's fulfilment fail (as a bug or an outage would), then heal it."""

    def _break(name: str):
        purpose = purpose_get(name)

        def fail(*, session):
            raise RuntimeError(f"{name} handler is down")

        monkeypatch.setattr(purpose, "fulfil", fail)
        return lambda: monkeypatch.undo()

    return _break


def _subscription(customer, billing, plans, **_):
    return checkout(customer, plans["uzs"], "click")


def _machine(customer, **_):
    from subscriptions.services.machines import machine_session_buy

    MachineFactory(code="lav-9")
    return machine_session_buy(
        customer=customer,
        machine_code="lav-9",
        minutes=30,
        method="pix",
        idempotency_key=uuid.uuid4().hex,
    )


def _topup(customer, **_):
    return payment_session_create(
        user=customer,
        purpose="wallet_topup",
        provider="mercadopago",
        amount="25.00",
        idempotency_key=uuid.uuid4().hex,
    ).session


def _ticket(**_):

    service = ServiceFactory(name="Segunda via", prefix="B")
    return kiosk_session(service)


MAKERS = {
    "subscription": _subscription,
    "machine_session": _machine,
    "wallet_topup": _topup,
    "ticket": _ticket,
}


@pytest.mark.parametrize("purpose", sorted(MAKERS))
def test_gap_found_repaired_once_then_healthy(purpose, broken, customer, billing, plans, mp_fake):
    session = MAKERS[purpose](customer=customer, billing=billing, plans=plans)
    heal = broken(purpose)
    result = confirm(session)
    assert result.session.status == "completed" and not result.fulfilled

    code, out = run("check")
    assert code == 1
    assert session.reference in out and "unfulfilled" in out and "handler is down" in out

    code, out = run("check", "--repair")  # still broken: stays listed
    assert code == 1 and "still failing 1" in out

    heal()
    code, out = run("check", "--repair", "--json")
    report = json.loads(out)
    assert code == 0, out
    assert report["repaired"] == [session.reference] and report["total"] == 0
    assert purpose_get(purpose).is_fulfilled(session=PaymentSession.objects.get(pk=session.pk))
    code, out = run("check")
    assert code == 0 and "no gaps" in out
    code, _ = run("check", "--repair")  # nothing left to do: nothing done twice
    fulfilled = PaymentAudit.objects.filter(session=session, action="fulfilled")
    assert fulfilled.count() == 1 and fulfilled.get().source == "reconciler"


@pytest.mark.usefixtures("private_media")
def test_order_gap(broken, customer, settings):
    from orders.errors import OrderError
    from orders.services import order_verify, proof_submit

    waiter = UserFactory(roles=["waiter"])
    cashier = UserFactory(roles=["cashier"])
    order = make_order(waiter)
    proof = proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )
    heal = broken("order")
    # The cashier's page refuses to approve when fulfilment fails (nothing is applied);
    # a confirmation from elsewhere (the admin) leaves the gap the monitor must find.
    with pytest.raises(OrderError):
        order_verify(order_id=order.pk, cashier=cashier)
    payment_confirm(
        reference=proof.payment_session.reference,
        evidence=Evidence(source=AuditSource.STAFF, actor=cashier, reason="bank statement"),
        amount=proof.payment_session.amount,
        currency=proof.payment_session.currency,
    )
    assert run("check")[0] == 1
    heal()
    code, out = run("check", "--repair")
    assert code == 0, out
    order.refresh_from_db()
    assert order.status == "paid"
    assert proof.payment_session.reference in out


def test_fulfilled_flag_without_the_thing_is_a_gap(customer, billing, plans):
    """Someone deleted the activation (or a handler lied): the purpose's own check wins."""
    from subscriptions.models import SubscriptionEvent

    session = checkout(customer, plans["uzs"], "click")
    confirm(session)
    SubscriptionEvent.objects.filter(payment_session=session).delete()
    code, out = run("check")
    assert code == 1 and session.reference in out
    code, _ = run("check", "--repair")
    assert code == 0
    assert SubscriptionEvent.objects.filter(payment_session=session).count() == 1


def test_held_payments_are_listed_but_never_repaired(customer, billing, plans):
    session = checkout(customer, plans["uzs"], "click")
    payment_confirm(
        reference=session.reference,
        evidence=Evidence(source=AuditSource.WEBHOOK),
        amount=Decimal("1.00"),
        currency="UZS",
    )
    code, out = run("check", "--repair")
    assert code == 1 and "amount_mismatch" in out and session.reference in out
    session.refresh_from_db()
    assert session.fulfilled_at is None


def test_watch_prints_changes_only(customer, billing, plans, broken):
    session = checkout(customer, plans["uzs"], "click")
    broken("subscription")
    confirm(session)
    code, out = run("watch", "--count", "2", "--interval", "0.1")
    assert code == 1
    assert out.count(session.reference) == 1  # listed once, not again on the 2nd round


def test_user_report(customer, billing, plans):
    session = checkout(customer, plans["uzs"], "click")
    confirm(session)
    for who in (str(customer.pk), customer.email, customer.username):
        code, out = run("user", who)
        assert code == 0 and session.reference in out and "subscription: active" in out
    code, out = run("user", customer.email, "--json")
    data = json.loads(out)
    assert data["payments"][0]["reference"] == session.reference
    assert data["subscription"]["status"] == "active"
    assert data["subscription_events"][0]["type"] == "activated"


def test_bad_input_exits_2():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as exc:
        call_command("monitor_payments", "user", "nobody@example.com")
    assert exc.value.returncode == 2
