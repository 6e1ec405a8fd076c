"""The transaction contract of the services that take in money.

Money that arrived stays recorded: once a confirmation returns, its completion, audit rows,
alerts and events are committed, whatever its caller does next. So `payment_confirm`,
`payment_fulfil`, `payment_refund` and a purchase paid from wallet credit each run in a
transaction of their own: the outermost one (a durable atomic block). Calling them inside a
caller's `transaction.atomic()` raises `TransactionContractError` at once, instead of
letting a later error in the caller roll the money back.

A purchase that must be all or nothing with rows of its own — a machine session bought
with credit creates its usage session, spends the credit and confirms the payment, or does
none of it — opens the purchase's transaction itself with `purchase_transaction()`;
`payment_session_create` then joins it. Nothing may run after the confirmation inside it
that could still fail.

`payment_fail`, `payment_cancel`, `payment_expire` and `payment_mark_processing` record
no money and may join a caller's transaction (a cashier's rejection fails the proof's
payment and moves the order back in one transaction).
"""

from contextlib import contextmanager

from django.db import transaction


class TransactionContractError(RuntimeError):
    """A programming error: a service that takes in money was called inside a caller's
    transaction, where a later error would roll the money back."""


_PURCHASE = "confirma_purchase"


def _durable(what: str):
    block = transaction.atomic(durable=True)
    connection = transaction.get_connection()
    blocks = connection.atomic_blocks
    if blocks and not blocks[-1]._from_testcase:
        raise TransactionContractError(
            f"{what} owns its transaction: call it outside any transaction.atomic() block, "
            "so that nothing its caller does afterwards can roll back the money it recorded."
        )
    return block


@contextmanager
def confirmation_transaction(what: str):
    """The transaction of one confirmation (or sibling): durable, never nested."""
    with _durable(what):
        yield


@contextmanager
def purchase_transaction():
    """The transaction of a purchase paid at once (wallet credit, a fully discounted price):
    durable. Directly inside an open purchase transaction (not in an atomic block opened
    within it) this joins it instead, as a savepoint of it: the service that opened it
    makes its own rows and the payment one unit."""
    block = transaction.atomic() if in_purchase_transaction() else _durable("A purchase")
    setattr(block, _PURCHASE, True)
    with block:
        yield


def in_purchase_transaction() -> bool:
    """True when the innermost open atomic block is a purchase transaction."""
    blocks = transaction.get_connection().atomic_blocks
    return bool(blocks) and getattr(blocks[-1], _PURCHASE, False)
