from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from payments.purposes import WalletTopup
        from payments.registry import purpose_register

        purpose_register(WalletTopup())

        from core.demo import demo_register
        from core.navigation import Page, page_register
        from payments.demo import payments_demo

        demo_register(payments_demo)

        page_register(
            Page(
                "payments",
                _("Payments and credit"),
                _("Your balance, top-ups and payments."),
                order=20,
            )
        )
