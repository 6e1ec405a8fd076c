"""The payment and usage state machines are enforced from their declared tables."""

import pytest

from payments.errors import InvalidTransition
from payments.models import (
    CLOSED_UNPAID_STATUSES,
    PAYMENT_TRANSITIONS,
    PaymentSession,
    PaymentStatus,
    payment_status_move,
    payment_transition_check,
)
from subscriptions.models import USAGE_TRANSITIONS, UsageSession, UsageStatus, usage_status_move


@pytest.mark.parametrize("before", list(PaymentStatus))
@pytest.mark.parametrize("to", list(PaymentStatus))
def test_payment_moves_follow_the_table(before, to):
    session = PaymentSession(status=before)
    if to in PAYMENT_TRANSITIONS[before]:
        assert payment_status_move(session, to) == before
        assert session.status == to
    else:
        with pytest.raises(InvalidTransition) as caught:
            payment_status_move(session, to)
        assert session.status == before  # nothing changed
        assert caught.value.code == "invalid_transition"
        assert caught.value.status == 409
        assert caught.value.details == {"before": before, "to": to}


@pytest.mark.parametrize("before", CLOSED_UNPAID_STATUSES)
def test_a_late_payment_may_complete_a_closed_session(before):
    with pytest.raises(InvalidTransition):
        payment_transition_check(before, PaymentStatus.COMPLETED)
    session = PaymentSession(status=before)
    assert payment_status_move(session, PaymentStatus.COMPLETED, late=True) == before
    assert session.status == PaymentStatus.COMPLETED


@pytest.mark.parametrize("before", [PaymentStatus.COMPLETED, PaymentStatus.REFUNDED])
def test_late_never_lets_a_paid_session_regress(before):
    for to in PaymentStatus:
        if to not in PAYMENT_TRANSITIONS[before]:
            with pytest.raises(InvalidTransition):
                payment_transition_check(before, to, late=True)


@pytest.mark.parametrize("before", list(UsageStatus))
@pytest.mark.parametrize("to", list(UsageStatus))
def test_usage_moves_follow_the_table(before, to):
    usage = UsageSession(status=before)
    if to in USAGE_TRANSITIONS[before]:
        assert usage_status_move(usage, to) == before
        assert usage.status == to
    else:
        with pytest.raises(InvalidTransition) as caught:
            usage_status_move(usage, to)
        assert usage.status == before
        assert caught.value.details == {"before": before, "to": to}
