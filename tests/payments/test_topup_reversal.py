"""A top-up whose money went back at the provider (refund, chargeback) takes its credit back:
the credit was bought with money Confirma no longer has."""

from decimal import Decimal

import pytest

from notifications.models import Alert
from payments.models import AuditSource, LedgerEntry, LedgerKind
from payments.services import payment_refund, wallet_account_get, wallet_adjust
from payments.services.confirmation import Evidence
from tests.factories import UserFactory
from tests.payments.test_confirmation import confirm, topup

pytestmark = pytest.mark.django_db

PROVIDER = Evidence(source=AuditSource.WEBHOOK)


def balance(user) -> Decimal:
    return wallet_account_get(user=user).balance


def test_a_chargeback_of_an_unspent_top_up_takes_the_credit_back_once(mp_fake):
    user = UserFactory()
    session = topup(user, "25.00")
    confirm(session)
    assert balance(user) == Decimal("25.00")

    payment_refund(reference=session.reference, evidence=PROVIDER, chargeback=True)
    payment_refund(reference=session.reference, evidence=PROVIDER, chargeback=True)

    assert balance(user) == Decimal("0.00")
    reversal = LedgerEntry.objects.get(session=session, kind=LedgerKind.ADJUSTMENT)
    assert reversal.amount == Decimal("-25.00")
    assert "chargeback" in reversal.reason
    assert not Alert.objects.filter(code="wallet.topup_reversal_short").exists()


def test_credit_already_spent_is_not_taken_below_zero_and_staff_are_told_the_shortfall(mp_fake):
    user = UserFactory()
    session = topup(user, "25.00")
    confirm(session)
    wallet_adjust(user=user, amount=Decimal("-20.00"), actor=UserFactory(), reason="spent")

    payment_refund(reference=session.reference, evidence=PROVIDER)

    assert balance(user) == Decimal("0.00")
    assert LedgerEntry.objects.get(session=session, kind=LedgerKind.ADJUSTMENT).amount == Decimal(
        "-5.00"
    )
    alert = Alert.objects.get(code="wallet.topup_reversal_short")
    assert alert.context["shortfall"] == "20.00" and alert.context["user"] == user.pk


def test_a_refund_of_a_top_up_that_never_credited_moves_nothing(mp_fake):
    user = UserFactory()
    wallet_adjust(user=user, amount=Decimal("7.00"), actor=UserFactory(), reason="gift")
    session = topup(user, "25.00")  # never confirmed: no credit was given

    payment_refund(reference=session.reference, evidence=PROVIDER)

    assert balance(user) == Decimal("7.00")
    assert not LedgerEntry.objects.filter(session=session, kind=LedgerKind.ADJUSTMENT).exists()
