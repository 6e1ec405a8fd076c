"""Every write of the payments core. Import from here; modules are split by concern."""

from payments.services.confirmation import (
    ConfirmOutcome,
    ConfirmResult,
    payment_cancel,
    payment_confirm,
    payment_expire,
    payment_fail,
    payment_fulfil,
    payment_mark_processing,
    payment_refund,
)
from payments.services.sessions import payment_session_create, payment_session_provider_sync
from payments.services.wallet import wallet_account_get, wallet_adjust, wallet_spend

__all__ = [
    "ConfirmOutcome",
    "ConfirmResult",
    "payment_cancel",
    "payment_confirm",
    "payment_expire",
    "payment_fail",
    "payment_fulfil",
    "payment_mark_processing",
    "payment_refund",
    "payment_session_create",
    "payment_session_provider_sync",
    "wallet_account_get",
    "wallet_adjust",
    "wallet_spend",
]
