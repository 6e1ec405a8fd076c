from django.utils.translation import gettext_lazy as _

from core.errors import ConfirmaError, Conflict, NotFound


class PaymentError(ConfirmaError):
    code = "payment_error"


class PaymentNotFound(NotFound):
    code = "payment_not_found"

    def __init__(self, reference: str = "") -> None:
        super().__init__(_("No payment session with this reference."), reference=reference[:80])


class UnknownPurpose(PaymentError):
    code = "unknown_purpose"


class InvalidParams(PaymentError):
    code = "invalid_params"


class UnsupportedProvider(PaymentError):
    code = "unsupported_provider"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__(_("This Idempotency-Key was already used with a different request body."))


class CouponError(PaymentError):
    code = "coupon_invalid"


class InsufficientCredit(PaymentError):
    code = "insufficient_credit"
    status = 402


class ProviderUnavailable(PaymentError):
    """The provider's API could not be reached or answered 5xx: try again later."""

    code = "provider_unavailable"
    status = 502


class InvalidTransition(PaymentError):
    code = "invalid_transition"
    status = 409


class FulfilmentRefused(Exception):
    """Raised by a fulfilment handler when the thing paid for cannot be delivered any more
    (e.g. the usage session was already paid by another payment). The payment stays
    completed and is flagged for refund; the reconciler does not retry it."""
