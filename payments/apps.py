from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.navigation import Page, page_register
from payments.converters import converters_register


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        # Here, not at the top: these modules import models, which exist only once every
        # app is registered (Django calls ready() then).
        from payments.purposes import WalletTopup
        from payments.registry import purpose_register

        converters_register()
        purpose_register(WalletTopup())

        from core.demo import demo_register
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
