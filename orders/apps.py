from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.navigation import Page, page_register


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Restaurant orders")

    def ready(self) -> None:
        # Here, not at the top: these modules import models, which exist only once every
        # app is registered (Django calls ready() then).
        from core.demo import demo_register
        from orders.demo import orders_demo
        from orders.selectors import orders_awaiting_count
        from orders.services import OrderPurpose
        from payments.registry import purpose_register

        purpose_register(OrderPurpose())
        page_register(
            Page(
                "cashier",
                _("Verify payments"),
                _("Proofs waiting for a cashier."),
                ("cashier",),
                40,
                badge=orders_awaiting_count,
            )
        )
        page_register(
            Page(
                "waiter",
                _("My tables"),
                _("Take orders, collect payments, upload proofs."),
                ("waiter",),
                41,
            )
        )
        page_register(Page("kitchen", _("Kitchen"), _("Orders to prepare."), ("kitchen",), 42))
        demo_register(orders_demo)
