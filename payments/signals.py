"""Signals for a business's own apps: react to payments without writing a purpose.

Both are sent with `sender=PaymentSession`, only after the transaction that made the
change commits (never for a change that was rolled back), once per change, in the order
the changes happened. A receiver that raises is logged and changes nothing: the payment
stays as recorded and the other receivers still run. Connect receivers in your app's
`AppConfig.ready()`; a change made while no receiver is connected sends nothing.

- `payment_confirmed(session, fulfilled)`: the payment was accepted and what it pays for
  was fulfilled (`fulfilled=True`) or its fulfilment failed and will be retried
  (`fulfilled=False`; sent again with `fulfilled=True` once a retry delivers it). Not
  sent for a payment held for review (amount mismatch, late payment) until staff accept
  it. The same moments as the `payment.confirmed` event on the live screens.
- `payment_status_changed(session, previous_status, status)`: the session's status
  changed (any move of PAYMENT_TRANSITIONS, or a late payment completing a closed
  session). `session` is the row as the transaction left it; `previous_status` and
  `status` are this change's own.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

from payments.models import PaymentSession

logger = logging.getLogger(__name__)

payment_confirmed = Signal()
payment_status_changed = Signal()


def _send_on_commit(signal: Signal, **kwargs) -> None:
    if not signal.has_listeners(PaymentSession):
        return  # nothing to do after commit, nothing to keep until then
    transaction.on_commit(lambda: _send(signal, kwargs))


def _send(signal: Signal, kwargs: dict) -> None:
    for receiver, result in signal.send_robust(sender=PaymentSession, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "payment signal receiver %s failed for %s",
                getattr(receiver, "__qualname__", receiver),
                kwargs["session"].reference,
                exc_info=result,
            )


def payment_confirmed_send(*, session: PaymentSession, fulfilled: bool) -> None:
    """Send `payment_confirmed` for `session` once the current transaction commits."""
    _send_on_commit(payment_confirmed, session=session, fulfilled=fulfilled)


def payment_status_changed_send(*, session: PaymentSession, previous_status: str) -> None:
    """Send `payment_status_changed` for the change `session` just made (its current
    status, from `previous_status`) once the current transaction commits."""
    _send_on_commit(
        payment_status_changed,
        session=session,
        previous_status=previous_status,
        status=session.status,
    )


def payment_statuses_changed_send(*, pks: list[int], previous_status: str, status: str) -> None:
    """As `payment_status_changed_send`, for sessions changed together by one UPDATE: they
    are read after commit (only when a receiver is connected)."""
    if not pks or not payment_status_changed.has_listeners(PaymentSession):
        return

    def send() -> None:
        for session in PaymentSession.objects.filter(pk__in=pks).order_by("pk"):
            _send(
                payment_status_changed,
                {"session": session, "previous_status": previous_status, "status": status},
            )

    transaction.on_commit(send)
