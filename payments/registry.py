"""Fulfilment handlers, one per purpose, registered by their apps at start-up.

`payments` never imports a fulfilment app: apps call `purpose_register` from their
`AppConfig.ready()`, and the confirmation path looks handlers up by name.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from payments.errors import UnknownPurpose
from payments.models import PaymentSession


@dataclass(frozen=True)
class Quote:
    """What a purpose decided for a new session: the price and the cleaned parameters."""

    amount: Decimal
    currency: str
    params: dict = field(default_factory=dict)
    description: str = ""
    metadata: dict = field(default_factory=dict)


class Purpose:
    """Base class of a fulfilment handler.

    `quote` validates the parameters and sets the price (raising InvalidParams);
    `fulfil` does database work only, is idempotent and exactly-once by a database
    constraint; it runs inside the confirmation's transaction (in a savepoint) with the
    session row locked. Raise FulfilmentRefused when the thing paid for cannot be
    delivered any more.
    """

    name: str = ""
    # What people read for this purpose (gettext_lazy): pages never show `name`.
    label = ""
    allow_anonymous: bool = False
    accepts_coupons: bool = True
    providers: tuple[str, ...] = ()
    # A session of this purpose starts in this status (e.g. "processing" for a proof that
    # someone must review), and stays payable this long (None: PAYMENT_SESSION_TTL_MINUTES).
    initial_status: str = "pending"
    # False: only Confirma's own pages and services start sessions of this purpose (a kiosk
    # page holding its token, a waiter's proof); POST /api/payment-sessions/ refuses it.
    public: bool = True
    session_ttl_minutes: int | None = None

    def quote(self, *, params: dict, user, amount: Decimal | None, currency: str | None) -> Quote:
        raise NotImplementedError

    def fulfil(self, *, session) -> None:
        raise NotImplementedError

    def fulfil_many(self, *, sessions: list) -> None:
        """Fulfil several sessions of this purpose at once (a batch of webhook deliveries):
        the same as `fulfil` for each, in bulk. All or nothing: it runs in one savepoint,
        and when it raises the confirmation path rolls it back and calls `fulfil` for each
        session in its own savepoint instead, so one that fails is isolated. A purpose that
        does not override it is always fulfilled one by one."""
        for session in sessions:
            self.fulfil(session=session)

    def batch_order(self, *, session) -> tuple:
        """Where this session's fulfilment goes in a batch of confirmations: batches apply
        their notifications sorted by purpose, then this key, then arrival, so that rows a
        fulfilment locks until the batch commits (a service's ticket counter) are always
        locked in the same order and two workers' batches never wait on each other in a
        circle. Default: no such rows."""
        return ()

    def on_hold(self, *, session, reason: str) -> None:
        """A payment for this purpose is held for a staff decision (amount mismatch, late
        payment) or was refunded: note it where the customer's history is kept. Database
        work only; failures are logged and never undo the payment's record."""

    def fulfilled_q(self):
        """A filter on PaymentSession true when what the session paid for exists (a ticket,
        an activation, a ledger entry…). The monitor runs it over every completed session
        in one query, so it must be a Q or an Exists() on `OuterRef("pk")`."""
        return Q(fulfilled_at__isnull=False)

    def is_fulfilled(self, *, session) -> bool:
        """Whether what the session paid for exists."""
        return PaymentSession.objects.filter(pk=session.pk).filter(self.fulfilled_q()).exists()


_PURPOSES: dict[str, Purpose] = {}


def purpose_register(purpose: Purpose) -> None:
    if not purpose.name:
        raise ValueError("a purpose needs a name")
    _PURPOSES[purpose.name] = purpose


def purpose_get(name: str) -> Purpose:
    try:
        return _PURPOSES[name]
    except KeyError:
        raise UnknownPurpose(f"Unknown purpose: {name[:40]}") from None


def purposes_all() -> dict[str, Purpose]:
    return dict(_PURPOSES)


def purpose_label(name: str) -> str:
    """The translated label of a purpose, for pages; a name no app registered (a purpose
    since removed) is returned as it is, so that staff can still tell what it was."""
    purpose = _PURPOSES.get(name)
    if purpose is None or not purpose.label:
        return name
    return str(purpose.label)
