"""The one interface every payment provider implements.

An adapter says how to check and read what its provider sends, and what the provider can
do for a payment session:

- `verify(request)`: the signature (SignatureInvalid when it is not the provider's);
- `event_id(request)`: the provider's id for this message, its idempotency key ("" when
  the protocol has none: the confirmation's own checks then keep it exactly once);
- `parse(request)`: the common `Notification` (None for messages with nothing to do),
  without calling the provider; MalformedPayload for anything unreadable;
- `fetch(provider_payment_id)`: optional, the payment's state from the provider's API
  (Mercado Pago's notifications only name the payment; polling uses it for every provider
  that has it);
- `create_payment(session)`: optional, start the payment at the provider;
- `currencies`: what it takes (None: any);
- for synchronous protocols (`synchronous = True`, Click), whose answer carries the result:
  `check(notification, session)` refuses before anything is applied, `answer(result)` and
  `refusal(...)` say what the provider is told.

Adapters never touch the database; `payments.services.intake` and
`payments.services.deliveries` drive them.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from payments.providers import InboundRequest, Notification, ProviderPayment


@dataclass(frozen=True)
class DeliveryResult:
    """What processing one delivery came to, as the adapter's `answer` sees it."""

    status: str  # a DeliveryStatus value: processed, duplicate, ignored, rejected, failed
    delivery_id: int | None = None
    outcome: str = ""  # the confirmation's outcome (confirmed, already_processed, …)
    session_pk: int | None = None
    error: str = ""
    provider_code: int | None = None  # a synchronous protocol's refusal code
    notification: Notification | None = None


class ProviderAdapter(ABC):
    name: str = ""
    # ISO 4217 codes the provider settles in; None: any.
    currencies: tuple[str, ...] | None = None
    # The answer to a webhook carries the processing result (processed in the request).
    synchronous = False
    # Confirma's own money (wallet credit): paid at once from a customer's balance, which
    # a refund gives back.
    own_money = False
    # The provider's payment needs at least this many minutes to live (session expiry).
    min_expiry_minutes = 0
    # Money can reach the account without starting in Confirma (Mercado Pago: a static
    # QR, a payment link): a notification whose reference is missing or unknown is matched
    # by its provider payment id, and kept as unmatched money when nothing matches
    # (`payments.services.unmatched`).
    keeps_unmatched = False

    # -- receiving ------------------------------------------------------------------
    @abstractmethod
    def verify(self, request: InboundRequest) -> None:
        """Raise SignatureInvalid unless the request is the provider's."""

    def event_id(self, request: InboundRequest) -> str:
        return ""

    @abstractmethod
    def parse(self, request: InboundRequest) -> Notification | None:
        """The notification the request carries (no network), or None: nothing to do."""

    def check(self, notification: Notification, session) -> None:
        """Raise ProviderRefusal when a synchronous protocol must refuse `notification`
        for `session` (None: no such session) before anything is applied."""
        return None

    def answer(self, result: DeliveryResult) -> tuple[int, dict]:
        """HTTP status and JSON body for a processed delivery (synchronous protocols)."""
        return 200, {"status": result.status}

    def refusal(
        self, request: InboundRequest | None, status: int, reason: str, exc: Exception | None
    ) -> tuple[int, dict]:
        """HTTP status and JSON body for a request refused at intake."""
        return status, {"error": reason}

    # -- asking the provider -----------------------------------------------------------
    def fetch(self, provider_payment_id: str) -> Notification | None:
        raise NotImplementedError(f"{self.name} has no payment lookup")

    @property
    def can_fetch(self) -> bool:
        return type(self).fetch is not ProviderAdapter.fetch

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        raise NotImplementedError(f"{self.name} creates no payment")

    @property
    def can_create(self) -> bool:
        return type(self).create_payment is not ProviderAdapter.create_payment

    def takes(self, currency: str) -> bool:
        return self.currencies is None or currency in self.currencies
