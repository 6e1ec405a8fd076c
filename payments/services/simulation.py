"""The demo's "simulate payment": asks a fake provider to pay, which then calls our real
webhook URL with a correctly signed notification. Never a shortcut around the webhook."""

import contextlib
import threading

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from payments.errors import PaymentError
from payments.fakes.kiosk import kiosk_send
from payments.models import PaymentSession, Provider

ACTIONS = {"approve": "paid", "reject": "failed", "expire": "expired"}


def payment_simulate(*, session: PaymentSession, action: str) -> None:
    """Make the fake provider settle `session` (approve, reject or expire). The outcome
    arrives a moment later through the webhook, like a real payment."""
    if not settings.FAKE_PROVIDERS:
        raise PaymentError(_("Payment simulation is off."), code="simulation_off")
    if action not in ACTIONS:
        raise PaymentError(_("Unknown simulation."), code="invalid_action")
    if not session.is_open:
        raise PaymentError(_("This payment is no longer open."), code="not_open")
    simulate = SIMULATORS.get(session.provider)
    if simulate is None or not simulate(session, action):
        raise PaymentError(_("This payment cannot be simulated."), code="not_simulable")


def _mercadopago(session: PaymentSession, action: str) -> bool:
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


def _kiosk(session: PaymentSession, action: str) -> bool:
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


# The providers whose fake can settle a payment on demand.
SIMULATORS = {Provider.MERCADOPAGO: _mercadopago, Provider.KIOSK: _kiosk}


def _send_quietly(url: str, fields: dict) -> None:
    with contextlib.suppress(requests.RequestException):
        kiosk_send(url, **fields)
