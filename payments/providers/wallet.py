"""Wallet credit: Confirma's own money. A payment from credit is paid at once, inside the
purchase's transaction (`payments.services.wallet`), so no message ever arrives for it; a
refund gives the credit back to the wallet."""

from payments.providers import InboundRequest, Notification, SignatureInvalid, provider_register
from payments.providers.base import ProviderAdapter


class WalletAdapter(ProviderAdapter):
    name = "wallet"
    own_money = True

    def verify(self, request: InboundRequest) -> None:
        raise SignatureInvalid("wallet credit receives no notifications")

    def parse(self, request: InboundRequest) -> Notification | None:
        return None


adapter = WalletAdapter()
provider_register(adapter)
