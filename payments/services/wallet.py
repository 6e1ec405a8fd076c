"""Credit wallets: an account per user and an append-only ledger.

The balance changes only with a ledger entry, under the account's row lock, and can never
go negative (checked here and by a database constraint).
"""

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from payments.errors import InsufficientCredit, PaymentError
from payments.models import LedgerEntry, LedgerKind, WalletAccount

logger = logging.getLogger(__name__)


def wallet_account_get(*, user, lock: bool = False) -> WalletAccount:
    account, _created = WalletAccount.objects.get_or_create(
        user=user, defaults={"currency": settings.WALLET_CURRENCY}
    )
    if lock:
        account = WalletAccount.objects.select_for_update().get(pk=account.pk)
    return account


def _move(account, *, kind, amount: Decimal, session=None, reason="", actor=None) -> LedgerEntry:
    new_balance = account.balance + amount
    if new_balance < 0:
        raise InsufficientCredit(
            _("Not enough credit: the balance is %(balance)s %(currency)s.")
            % {"balance": account.balance, "currency": account.currency},
            balance=account.balance,
        )
    account.balance = new_balance
    account.save(update_fields=["balance", "updated_at"])
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        amount=amount,
        balance_after=new_balance,
        session=session,
        reason=reason,
        actor=actor,
    )
    logger.info(
        "wallet %s %s %s -> %s",
        account.pk,
        kind,
        amount,
        new_balance,
        extra={"reference": getattr(session, "reference", "")},
    )
    return entry


def wallet_credit_topup(*, session) -> LedgerEntry:
    """Credit a completed top-up session to its user's wallet, once per session."""
    with transaction.atomic():
        account = wallet_account_get(user=session.user, lock=True)
        existing = LedgerEntry.objects.filter(session=session, kind=LedgerKind.TOPUP).first()
        if existing:
            return existing
        if session.currency != account.currency:
            raise PaymentError(
                f"wallet currency is {account.currency}, top-up is {session.currency}"
            )
        return _move(
            account, kind=LedgerKind.TOPUP, amount=session.amount, session=session, reason="top-up"
        )


def wallet_spend(*, user, amount: Decimal, currency: str, session, reason: str = ""):
    """Take `amount` from the user's wallet for `session`, once per session.

    Raises InsufficientCredit (nothing changes) when the balance is too low.
    """
    with transaction.atomic():
        account = wallet_account_get(user=user, lock=True)
        if currency != account.currency:
            raise PaymentError(
                _("Your credit is in %(c)s.") % {"c": account.currency}, code="wallet_currency"
            )
        existing = LedgerEntry.objects.filter(session=session, kind=LedgerKind.SPEND).first()
        if existing:
            return existing
        return _move(account, kind=LedgerKind.SPEND, amount=-amount, session=session, reason=reason)


def wallet_return(*, session, reason: str, actor=None) -> LedgerEntry | None:
    """Give back what a wallet payment spent (its fulfilment was refused, or staff recorded
    a refund: `actor`), once per session; None when it spent nothing (a free session).

    Runs in the caller's transaction (the confirmation's, holding the session lock), so the
    credit is back before anything commits; the balance goes up by the amount spent.
    """
    with transaction.atomic():
        spent = LedgerEntry.objects.filter(session=session, kind=LedgerKind.SPEND).first()
        if spent is None:
            return None
        account = WalletAccount.objects.select_for_update().get(pk=spent.account_id)
        existing = LedgerEntry.objects.filter(session=session, kind=LedgerKind.REFUND).first()
        if existing:
            return existing
        return _move(
            account,
            kind=LedgerKind.REFUND,
            amount=-spent.amount,
            session=session,
            reason=reason,
            actor=actor,
        )


def wallet_topup_reverse(*, session, reason: str) -> tuple[LedgerEntry | None, Decimal]:
    """Take back the credit a top-up gave, once per session, when the provider's money went
    back (a refund or a chargeback): the credit was bought with money Confirma no longer has.

    The wallet never goes negative: what the customer already spent cannot be taken back
    and is returned as the shortfall (the caller alerts staff). Returns the reversing entry
    (None when the top-up gave no credit, or the balance was zero) and the shortfall. Runs
    in the caller's transaction.
    """
    with transaction.atomic():
        credited = LedgerEntry.objects.filter(session=session, kind=LedgerKind.TOPUP).first()
        if credited is None:
            return None, Decimal("0")
        account = WalletAccount.objects.select_for_update().get(pk=credited.account_id)
        existing = LedgerEntry.objects.filter(session=session, kind=LedgerKind.ADJUSTMENT).first()
        if existing is not None:
            return existing, credited.amount + existing.amount
        taken = min(account.balance, credited.amount)
        shortfall = credited.amount - taken
        if not taken:
            return None, shortfall
        entry = _move(
            account, kind=LedgerKind.ADJUSTMENT, amount=-taken, session=session, reason=reason
        )
        return entry, shortfall


def wallet_adjust(*, user, amount: Decimal, actor, reason: str) -> LedgerEntry:
    """A staff correction of a balance (positive or negative), with a required reason."""
    if not reason.strip():
        raise PaymentError(_("A reason is required for a staff action."), code="reason_required")
    if not amount:
        raise PaymentError(_("The amount must not be zero."), code="invalid_amount")
    with transaction.atomic():
        account = wallet_account_get(user=user, lock=True)
        return _move(account, kind=LedgerKind.ADJUSTMENT, amount=amount, reason=reason, actor=actor)
