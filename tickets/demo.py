from decimal import Decimal

from django.conf import settings

from notifications.audiences import audience_display
from notifications.tokens import audience_token_create
from tickets.models import Kiosk, Printer, Service
from tickets.services import kiosk_token_rotate

SERVICES = [
    ("A", "Atendimento geral", "5.00", 1),
    ("B", "Emissão de documentos", "12.50", 2),
    ("C", "Câmbio e remessas", "8.00", 3),
]


def tickets_demo() -> list[str]:
    printer, _ = Printer.objects.get_or_create(
        name="Demo printer", defaults={"url": "dummy:", "location": "Lobby"}
    )
    for prefix, name, price, order in SERVICES:
        Service.objects.get_or_create(
            prefix=prefix, defaults={"name": name, "price": Decimal(price), "display_order": order}
        )
    kiosk, _ = Kiosk.objects.get_or_create(
        name="Totem 1", defaults={"printer": printer, "location": "Lobby"}
    )
    token = kiosk_token_rotate(kiosk=kiosk)
    display = audience_token_create(
        audiences=[audience_display(settings.TICKET_DISPLAY)], ttl_seconds=365 * 24 * 3600
    )
    return [
        "Kiosk tickets: services A, B, C; printer 'Demo printer' (dummy:)",
        f"  kiosk page:    /kiosk/?token={token}",
        f"  display board: /display/?token={display}",
    ]
