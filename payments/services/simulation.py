"""The demo's "simulate payment": asks a fake provider to pay, which then calls our real
webhook URL with a correctly signed notification. Never a shortcut around the webhook.

`payments` knows no fake provider: the fake providers' app (installed only when
FAKE_PROVIDERS is on) registers one simulator per provider it fakes from its
`AppConfig.ready()`, and `payment_simulate` looks them up by provider.
"""

from collections.abc import Callable

from django.conf import settings
from django.utils.translation import gettext as _

from payments.errors import PaymentError
from payments.models import PaymentSession

ACTIONS = {"approve": "paid", "reject": "failed", "expire": "expired"}

# A simulator makes its fake provider settle the session (action is one of ACTIONS) and
# returns whether it could; the outcome comes back through the webhook.
Simulator = Callable[[PaymentSession, str], bool]

_simulators: dict[str, Simulator] = {}


def simulator_register(provider: str, simulator: Simulator) -> None:
    """Let `payment_simulate` settle `provider`'s payments through `simulator`."""
    _simulators[provider] = simulator


def simulator_get(provider: str) -> Simulator | None:
    return _simulators.get(provider)


def payment_simulate(*, session: PaymentSession, action: str) -> None:
    """Make the fake provider settle `session` (approve, reject or expire). The outcome
    arrives a moment later through the webhook, like a real payment."""
    if not settings.FAKE_PROVIDERS:
        raise PaymentError(_("Payment simulation is off."), code="simulation_off")
    if action not in ACTIONS:
        raise PaymentError(_("Unknown simulation."), code="invalid_action")
    if not session.is_open:
        raise PaymentError(_("This payment is no longer open."), code="not_open")
    simulate = simulator_get(session.provider)
    if simulate is None or not simulate(session, action):
        raise PaymentError(_("This payment cannot be simulated."), code="not_simulable")
