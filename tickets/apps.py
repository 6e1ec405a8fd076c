from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.navigation import Page, page_register


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = _("Kiosk tickets")

    def ready(self) -> None:
        # Here, not at the top: these modules import models, which exist only once every
        # app is registered (Django calls ready() then).
        from core.demo import demo_register
        from payments.registry import purpose_register
        from tickets.demo import tickets_demo
        from tickets.services import TicketPurpose

        ticket_purpose = TicketPurpose()
        # Set here rather than on the class: it is only what pages call the purpose.
        ticket_purpose.label = _("Queue ticket")
        purpose_register(ticket_purpose)
        page_register(
            Page(
                "operator",
                _("Ticket queue"),
                _("Call, serve and reprint tickets."),
                ("operator",),
                30,
            )
        )
        page_register(
            Page(
                "integration",
                _("Kiosk integration"),
                _("Paid sessions vs tickets, live."),
                ("staff",),
                120,
            )
        )
        demo_register(tickets_demo)
