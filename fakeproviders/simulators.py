"""How each fake provider settles a payment on demand (the demo's Simulate buttons).

Registered with `payments` by this app's `AppConfig.ready()`; `payment_simulate` calls them.
"""

import contextlib
import threading

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from payments.errors import PaymentError
from payments.models import PaymentSession, Provider
from payments.providers.kiosk import kiosk_send
from payments.services.simulation import ACTIONS


def mercadopago_simulate(session: PaymentSession, action: str) -> bool:
    """The fake Mercado Pago settles the PIX and posts its notification."""
    if not session.provider_payment_id:
        return False
    url = (
        f"{settings.MERCADOPAGO_API_BASE.rstrip('/')}/_fake/payments/"
        f"{session.provider_payment_id}/{action}"
    )
    headers = {"Authorization": f"Bearer {settings.MERCADOPAGO_ACCESS_TOKEN}"}
    response = requests.post(url, headers=headers, json={}, timeout=5)
    if response.status_code >= 400:
        raise PaymentError(_("The fake provider refused: %(s)s") % {"s": response.status_code})
    return True


def kiosk_simulate(session: PaymentSession, action: str) -> bool:
    """The fake kiosk terminal posts its signed notification."""
    webhook = settings.PUBLIC_BASE_URL.rstrip("/") + "/webhooks/kiosk/"
    fields = {
        "secret": settings.KIOSK_WEBHOOK_SECRET,
        "reference": session.reference,
        "status": ACTIONS[action],
        "amount": str(session.amount),
        "currency": session.currency,
    }
    # Sent from another thread: this request may be served by the same process.
    threading.Thread(target=_send_quietly, args=(webhook, fields), daemon=True).start()
    return True


def _send_quietly(url: str, fields: dict) -> None:
    with contextlib.suppress(requests.RequestException):
        kiosk_send(url, **fields)


# The providers whose fake can settle a payment on demand.
SIMULATORS = {Provider.MERCADOPAGO: mercadopago_simulate, Provider.KIOSK: kiosk_simulate}
