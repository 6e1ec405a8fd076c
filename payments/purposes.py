"""The payments core's own purpose: topping up a credit wallet."""

from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.services import alert_raise
from payments.errors import InvalidParams
from payments.models import LedgerEntry, LedgerKind, Provider
from payments.registry import Purpose, Quote
from payments.services.wallet import wallet_credit_topup, wallet_topup_reverse


class WalletTopup(Purpose):
    name = "wallet_topup"
    label = gettext_lazy("Wallet top-up")
    providers = (Provider.MERCADOPAGO,)
    accepts_coupons = False  # credit bought with a discount would be free money

    def quote(self, *, params, user, amount, currency) -> Quote:
        wallet_currency = settings.WALLET_CURRENCY
        if amount is None:
            raise InvalidParams(_("Choose an amount to top up."))
        if currency and currency != wallet_currency:
            raise InvalidParams(_("Top-ups are in %(c)s.") % {"c": wallet_currency})
        low, high = settings.WALLET_TOPUP_MIN, settings.WALLET_TOPUP_MAX
        if not low <= amount <= high:
            raise InvalidParams(
                _("A top-up must be between %(low)s and %(high)s %(c)s.")
                % {"low": low, "high": high, "c": wallet_currency}
            )
        if params:
            raise InvalidParams(_("A top-up takes no parameters."))
        return Quote(Decimal(amount), wallet_currency, {}, _("Wallet top-up"))

    def fulfil(self, *, session) -> None:
        wallet_credit_topup(session=session)

    def on_hold(self, *, session, reason: str) -> None:
        """A refund or chargeback of a top-up takes its credit back; what was already spent
        cannot be, and staff are alerted with the shortfall."""
        if reason not in ("refund", "chargeback"):
            return
        entry, shortfall = wallet_topup_reverse(
            session=session, reason=f"top-up reversed: {reason} at the provider"
        )
        if shortfall > 0:
            alert_raise(
                code="wallet.topup_reversal_short",
                message=(
                    f"A {reason} of top-up {session.reference} took back "
                    f"{-(entry.amount if entry else 0)} {session.currency}; "
                    f"{shortfall} {session.currency} had already been spent."
                ),
                context={
                    "reference": session.reference,
                    "user": session.user_id,
                    "shortfall": str(shortfall),
                },
            )

    def fulfilled_q(self):
        return Exists(LedgerEntry.objects.filter(session=OuterRef("pk"), kind=LedgerKind.TOPUP))
